"""Fan-out and delivery end to end: real API, real worker, real HTTP to a loopback receiver."""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import auth, event_body, make_key
from tests.webhooks import WORKER_ENV, Receiver, running_receiver, running_worker, wait_for


@pytest.fixture
def worker_env(database_url, monkeypatch):
    monkeypatch.setenv("EVENTGATE_DATABASE_URL", database_url)
    for name, value in WORKER_ENV.items():
        monkeypatch.setenv(name, value)
    return database_url


@pytest.fixture
async def receiver():
    async with running_receiver() as running:
        yield running


async def add_endpoint(client, key: str, receiver: Receiver, path: str, **fields) -> dict:
    response = await client.post(
        "/v1/endpoints",
        json={"url": receiver.endpoint_url(path), **fields},
        headers=auth(key),
    )
    assert response.status_code == 201, response.text
    created = response.json()
    receiver.secrets[path] = [created["secret"]]
    return created["endpoint"]


def statuses(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT status, count(*) FROM deliveries GROUP BY status").fetchall()
    return dict(rows)


async def test_an_event_reaches_every_subscribed_endpoint_signed(client, worker_env, receiver):
    key = await make_key(worker_env)
    await add_endpoint(client, key, receiver, "all")
    await add_endpoint(client, key, receiver, "invoices", event_types=["invoice.*"])
    await add_endpoint(client, key, receiver, "exact", event_types=["invoice.paid"])
    await add_endpoint(client, key, receiver, "other", event_types=["user.*", "invoice"])

    response = await client.post(
        "/v1/events", json=event_body(payload={"amount": 42}), headers=auth(key)
    )
    event_id = response.json()["event_id"]
    async with running_worker():
        await wait_for(lambda: statuses(worker_env) == {"succeeded": 3}, what="3 deliveries")

    assert sorted(r.path for r in receiver.received) == ["all", "exact", "invoices"]
    for got in receiver.received:
        assert got.verified
        assert got.headers["content-type"] == "application/json"
        assert got.headers["webhook-id"] == event_id
        assert got.body["id"] == event_id
        assert got.body["payload"] == {"amount": 42}
        assert got.body["event_type"] == "invoice.paid"

    listed = (await client.get(f"/v1/events/{event_id}/deliveries", headers=auth(key))).json()
    assert len(listed["deliveries"]) == 3
    delivery_id = listed["deliveries"][0]["id"]
    detail = (await client.get(f"/v1/deliveries/{delivery_id}", headers=auth(key))).json()
    assert detail["delivery"]["status"] == "succeeded"
    assert [(a["attempt"], a["status_code"]) for a in detail["attempts"]] == [(1, 200)]
    assert detail["attempts"][0]["response_body"] == "answer 200"


async def test_a_failing_answer_is_retried_and_every_attempt_recorded(client, worker_env, receiver):
    key = await make_key(worker_env)
    await add_endpoint(client, key, receiver, "flaky")
    receiver.scripts["flaky"] = [500, 502]
    await client.post("/v1/events", json=event_body(), headers=auth(key))
    async with running_worker():
        await wait_for(lambda: statuses(worker_env) == {"succeeded": 1}, what="success")
    listed = (await client.get("/v1/deliveries", headers=auth(key))).json()
    detail = (
        await client.get(f"/v1/deliveries/{listed['deliveries'][0]['id']}", headers=auth(key))
    ).json()
    assert [a["status_code"] for a in detail["attempts"]] == [500, 502, 200]
    assert detail["attempts"][0]["response_body"] == "answer 500"
    assert detail["delivery"]["attempts"] == 3
    # The message id is the same on every try, so the receiver can de-duplicate.
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    assert all(r.verified for r in receiver.received)
