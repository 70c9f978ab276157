"""Fan-out and delivery end to end: real API, real worker, real HTTP to a loopback receiver."""

from __future__ import annotations

import psycopg

from db import endpoints
from tests.helpers import (
    add_endpoint,
    attempts_recorded,
    auth,
    event_body,
    make_key,
    running_worker,
    statuses,
    wait_for,
)


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


def delivery_rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT status, attempts, last_status_code, last_error FROM deliveries ORDER BY event_id"
        ).fetchall()


async def test_a_thousand_events_to_three_endpoints_all_arrive_once(
    client, worker_env, receiver, monkeypatch
):
    # Exactly once, as long as no try times out: the receiver shares this test's event loop
    # with 3,000 deliveries, so a stalled loop on a busy machine must not count as a timeout
    # (timeouts and their at-least-once retries have tests of their own).
    monkeypatch.setenv("EVENTGATE_DELIVERY_TIMEOUT_SECONDS", "20")
    monkeypatch.setenv("EVENTGATE_DELIVERY_LEASE_SECONDS", "40")
    key = await make_key(worker_env)
    for path in ("a", "b", "c"):
        await add_endpoint(client, key, receiver, path)
    sent = []
    for _ in range(2):
        batch = [event_body(payload={"n": n}) for n in range(500)]
        response = await client.post("/v1/events/batch", json={"events": batch}, headers=auth(key))
        sent += [e["event_id"] for e in response.json()["events"]]
    async with running_worker(concurrency=6):
        await wait_for(
            lambda: statuses(worker_env) == {"succeeded": 3000}, timeout=60, what="3000 deliveries"
        )
    arrived = [(r.path, r.body["id"]) for r in receiver.received]
    assert len(arrived) == 3000
    assert set(arrived) == {(path, event_id) for path in "abc" for event_id in sent}
    assert all(r.verified for r in receiver.received)


async def test_dead_deliveries_are_listed_replayed_and_recovered(client, worker_env, receiver):
    key = await make_key(worker_env)
    endpoint = await add_endpoint(client, key, receiver, "down")
    receiver.scripts["down"] = [500] * 6  # two events x three tries (schedule 0, 0.2, 0.2)
    for n in range(2):
        await client.post("/v1/events", json=event_body(payload={"n": n}), headers=auth(key))
    async with running_worker():
        await wait_for(lambda: statuses(worker_env) == {"dead": 2}, what="dead letters")
        dead = (await client.get("/v1/deliveries?status=dead", headers=auth(key))).json()
        assert len(dead["deliveries"]) == 2
        assert all(d["attempts"] == 3 and d["last_status_code"] == 500 for d in dead["deliveries"])

        first = dead["deliveries"][0]["id"]
        retried = await client.post(f"/v1/deliveries/{first}/retry", headers=auth(key))
        assert retried.status_code == 202
        assert retried.json()["status"] == "pending"
        await wait_for(lambda: statuses(worker_env) == {"dead": 1, "succeeded": 1}, what="replay")
        again = await client.post(f"/v1/deliveries/{first}/retry", headers=auth(key))
        assert again.status_code == 409  # a succeeded delivery is not retried

        recovered = await client.post(
            f"/v1/endpoints/{endpoint['id']}/recover",
            json={"since": "2000-01-01T00:00:00Z"},
            headers=auth(key),
        )
        assert recovered.status_code == 202
        assert recovered.json()["recovered"] == 1
        await wait_for(lambda: statuses(worker_env) == {"succeeded": 2}, what="recover")
    assert len(receiver.received) == 8
    assert sorted(r.body["payload"]["n"] for r in receiver.received[-2:]) == [0, 1]


async def test_signatures_verify_across_a_secret_rotation(client, worker_env, receiver):
    key = await make_key(worker_env)
    endpoint = await add_endpoint(client, key, receiver, "rotating")
    old_secret = receiver.secrets["rotating"][0]
    rotated = await client.post(f"/v1/endpoints/{endpoint['id']}/rotate-secret", headers=auth(key))
    new_secret = rotated.json()["secret"]
    await client.post("/v1/events", json=event_body(), headers=auth(key))
    async with running_worker():
        await wait_for(lambda: statuses(worker_env) == {"succeeded": 1}, what="delivery")
    got = receiver.received[0]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    # A receiver that knows only one of the two secrets verifies the request.
    for secret in (old_secret, new_secret):
        receiver.secrets["rotating"] = [secret]
        assert receiver.verify("rotating", got.raw, got.headers)
    receiver.secrets["rotating"] = ["whsec_" + "A" * 43 + "="]
    assert not receiver.verify("rotating", got.raw, got.headers)


async def test_send_time_check_refuses_private_destinations(
    client, worker_env, receiver, monkeypatch
):
    key = await make_key(worker_env)
    await add_endpoint(client, key, receiver, "private")
    monkeypatch.setenv("EVENTGATE_ALLOW_PRIVATE_DESTINATIONS", "false")
    await client.post("/v1/events", json=event_body(), headers=auth(key))
    async with running_worker():
        await wait_for(lambda: statuses(worker_env) == {"dead": 1}, what="refusal")
    assert receiver.received == []
    ((_status, attempts, code, error),) = delivery_rows(worker_env)
    assert attempts == 3
    assert code is None
    assert "non-public address 127.0.0.1" in error


async def test_a_test_send_is_signed_and_recorded(client, worker_env, receiver):
    key = await make_key(worker_env)
    endpoint = await add_endpoint(client, key, receiver, "t", event_types=["never.sent"])
    sent = await client.post(f"/v1/endpoints/{endpoint['id']}/test", headers=auth(key))
    assert sent.status_code == 202
    async with running_worker():
        await wait_for(lambda: statuses(worker_env) == {"succeeded": 1}, what="test send")
    assert receiver.received[0].body["event_type"] == "eventgate.test"
    assert receiver.received[0].verified
    inbox = (await client.get("/v1/inbox", headers=auth(key))).json()
    assert inbox["events"] == []  # test events stay out of the inbox


async def test_timeouts_fail_the_try_and_redirects_are_not_followed(client, worker_env, receiver):
    key = await make_key(worker_env)
    await add_endpoint(client, key, receiver, "moved", event_types=["invoice.*"])
    receiver.scripts["moved"] = [(302, {"Location": receiver.endpoint_url("elsewhere")})]
    await client.post("/v1/events", json=event_body(), headers=auth(key))
    async with running_worker():
        await wait_for(lambda: statuses(worker_env) == {"succeeded": 1}, what="delivery")
        assert [r.path for r in receiver.received] == ["moved", "moved"]  # 302, then 200

        await add_endpoint(client, key, receiver, "slow", event_types=["slow.*"])
        receiver.delay = 2.5  # beyond the 2 s total timeout of the test settings
        body = event_body(event_type="slow.thing")
        await client.post("/v1/events", json=body, headers=auth(key))
        await wait_for(lambda: statuses(worker_env) == {"succeeded": 1, "dead": 1}, what="timeouts")
    rows = delivery_rows(worker_env)
    assert ("dead", 3, None, "timed out") in rows
    detail = (await client.get("/v1/deliveries?status=dead", headers=auth(key))).json()
    dead_id = detail["deliveries"][0]["id"]
    attempts = (await client.get(f"/v1/deliveries/{dead_id}", headers=auth(key))).json()
    assert [a["error"] for a in attempts["attempts"]] == ["timed out"] * 3
    assert all(a["latency_ms"] >= 1900 for a in attempts["attempts"])  # the 2 s timeout, not sooner


async def test_deleting_an_endpoint_mid_send_keeps_a_send_that_arrived(
    client, worker_env, receiver
):
    key = await make_key(worker_env)
    kept = await add_endpoint(client, key, receiver, "kept")
    refused = await add_endpoint(client, key, receiver, "refused")
    receiver.scripts["refused"] = [500]
    receiver.delay = 1.0  # both sends are in flight when their endpoints go
    await client.post("/v1/events", json=event_body(), headers=auth(key))
    async with running_worker():
        await wait_for(lambda: receiver.in_flight == 2, what="both sends in flight")
        for endpoint in (kept, refused):
            response = await client.delete(f"/v1/endpoints/{endpoint['id']}", headers=auth(key))
            assert response.status_code == 200, response.text
        await wait_for(lambda: attempts_recorded(worker_env) == 2, what="both tries recorded")
    # The receiver took the first: it is delivered, not dead. The second failed and, its
    # endpoint gone, is never tried again.
    assert rows_by_url(worker_env) == [
        (kept["url"], "succeeded", 200, None),
        (refused["url"], "dead", 500, "endpoint deleted"),
    ]
    assert len(receiver.received) == 2


async def test_a_deleted_endpoints_send_cut_short_by_a_dead_worker_is_ended(client, database_url):
    key = await make_key(database_url)
    urls = [f"http://127.0.0.1:9/{name}" for name in ("deleted", "live")]
    ids = []
    for url in urls:
        created = await client.post("/v1/endpoints", json={"url": url}, headers=auth(key))
        ids.append(created.json()["endpoint"]["id"])
    await client.post("/v1/events", json=event_body(), headers=auth(key))
    with psycopg.connect(database_url, autocommit=True) as conn:
        # A worker took both and died: their leases have run out.
        conn.execute(
            "UPDATE deliveries SET status = 'delivering', attempts = 1,"
            " next_attempt_at = now() - interval '1 second'"
        )
    await client.delete(f"/v1/endpoints/{ids[0]}", headers=auth(key))
    assert [row[1] for row in rows_by_url(database_url)] == ["delivering", "delivering"]
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        assert await endpoints.end_orphaned_deliveries(conn) == 1
    # The live endpoint's delivery is for the next claim to take again.
    assert rows_by_url(database_url) == [
        (urls[0], "dead", None, "endpoint deleted"),
        (urls[1], "delivering", None, None),
    ]


def rows_by_url(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT e.url, d.status, d.last_status_code, d.last_error FROM deliveries d"
            " JOIN endpoints e ON e.id = d.endpoint_id ORDER BY e.url"
        ).fetchall()
