"""Circuit breaker, 410 Gone, pausing, ordering, rate limits, Retry-After and priorities."""

from __future__ import annotations

from collections import Counter

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from core.settings import Settings
from tests.helpers import (
    add_endpoint,
    auth,
    ingest,
    make_key,
    running_worker,
    statuses,
    wait_for,
)
from workers.delivery import claim


@pytest.fixture
def worker_env(worker_env, monkeypatch):
    monkeypatch.setenv("EVENTGATE_DELIVERY_RETRY_SCHEDULE", "0,0.1,0.1,0.1,0.1,0.1")
    return worker_env


async def test_the_circuit_opens_holds_deliveries_back_and_probes_one_at_a_time(
    client, worker_env, receiver, monkeypatch
):
    monkeypatch.setenv("EVENTGATE_CIRCUIT_FAILURE_THRESHOLD", "2")
    key = await make_key(worker_env)
    endpoint = await add_endpoint(client, key, receiver, "sick")
    receiver.scripts["sick"] = [500, 500, 500, 500]
    await ingest(client, key, 3)
    async with running_worker():
        await wait_for(lambda: len(receiver.received) >= 3, what="first batch")
        await wait_for(lambda: _circuit(client, key, endpoint["id"]), what="the circuit to open")
        await wait_for(lambda: statuses(worker_env) == {"succeeded": 3}, what="recovery")
    times = [r.at for r in receiver.received]
    assert len(times) == 7  # 3 failures, a failed probe, a good probe, the 2 held back
    assert times[3] - times[2] >= 0.9  # held back for the cooldown, not retried at 0.1 s
    assert times[4] - times[3] >= 0.9  # the failed probe re-opened it
    view = (await client.get(f"/v1/endpoints/{endpoint['id']}", headers=auth(key))).json()
    assert view["circuit"] == "closed"
    assert view["consecutive_failures"] == 0


async def _circuit(client, key: str, endpoint_id: str) -> bool:
    view = (await client.get(f"/v1/endpoints/{endpoint_id}", headers=auth(key))).json()
    return view["circuit"] == "open"


async def test_410_gone_disables_and_enabling_resumes(client, worker_env, receiver):
    key = await make_key(worker_env)
    endpoint = await add_endpoint(client, key, receiver, "gone")
    receiver.scripts["gone"] = [410]
    await ingest(client, key, 1)
    path = f"/v1/endpoints/{endpoint['id']}"
    async with running_worker():
        await wait_for(lambda: statuses(worker_env) == {"failed": 1}, what="the 410")
        view = (await client.get(path, headers=auth(key))).json()
        assert view["is_active"] is False
        assert "410" in view["disabled_reason"]
        await ingest(client, key, 2)  # accepted while disabled: they wait
        deliveries = (await client.get("/v1/deliveries", headers=auth(key))).json()["deliveries"]
        assert {d["next_attempt_at"] for d in deliveries} == {None}
        enabled = await client.post(f"{path}/enable", headers=auth(key))
        assert enabled.json()["is_active"] is True
        await wait_for(lambda: statuses(worker_env) == {"succeeded": 3}, what="resumed")
    assert len(receiver.received) == 4


async def test_disabling_pauses_and_enabling_resumes_without_loss(client, worker_env, receiver):
    key = await make_key(worker_env)
    endpoint = await add_endpoint(client, key, receiver, "paused")
    path = f"/v1/endpoints/{endpoint['id']}"
    await client.post(f"{path}/disable", headers=auth(key))
    await ingest(client, key, 3)
    async with running_worker():
        await wait_for(lambda: statuses(worker_env) == {"pending": 3}, what="pending")
        await client.post(f"{path}/enable", headers=auth(key))
        await wait_for(lambda: statuses(worker_env) == {"succeeded": 3}, what="resumed")
    assert sorted(r.body["payload"]["n"] for r in receiver.received) == [0, 1, 2]


async def test_ordered_endpoints_get_events_in_order_one_at_a_time(client, worker_env, receiver):
    key = await make_key(worker_env)
    await add_endpoint(client, key, receiver, "ordered", ordered=True)
    await add_endpoint(client, key, receiver, "loose")
    receiver.scripts["ordered"] = [500, 500]  # the head fails twice and holds the rest back
    receiver.delay = 0.02
    await ingest(client, key, 6)
    async with running_worker():
        await wait_for(lambda: statuses(worker_env) == {"succeeded": 12}, what="all")
    order = [r.body["payload"]["n"] for r in receiver.at("ordered")]
    assert order == [0, 0, 0, 1, 2, 3, 4, 5]
    assert receiver.max_in_flight["ordered"] == 1
    assert len(receiver.at("loose")) == 6


async def test_rate_limit_per_second_holds_across_the_batch(client, worker_env, receiver):
    key = await make_key(worker_env)
    await add_endpoint(client, key, receiver, "slow", rate_limit_per_s=4)
    await ingest(client, key, 12)
    async with running_worker(concurrency=4):
        await wait_for(lambda: statuses(worker_env) == {"succeeded": 12}, what="all")
    walls = sorted(r.wall for r in receiver.received)
    assert walls[-1] - walls[0] > 1.0  # 12 at 4 per second span three one-second windows
    with psycopg.connect(worker_env) as conn:
        windows = [n for (n,) in conn.execute("SELECT sent FROM endpoint_rate_windows")]
    assert len(windows) >= 3
    assert max(windows) == 4
    assert sum(windows) == 12


async def test_one_claim_leases_plain_endpoints_at_once_and_a_limited_one_to_its_rate(
    client, worker_env, receiver
):
    key = await make_key(worker_env)
    await add_endpoint(client, key, receiver, "plain")
    await add_endpoint(client, key, receiver, "limited", rate_limit_per_s=2)
    await ingest(client, key, 5)
    settings = Settings.from_env()
    with psycopg.connect(worker_env) as conn:
        before_claim = conn.execute("SELECT now()").fetchone()
    assert before_claim is not None
    async with AsyncConnectionPool(worker_env, kwargs={"autocommit": True}) as pool:
        claimed = await claim(pool, "default", settings)
    assert Counter(c.url.rsplit("/", 1)[-1] for c in claimed) == {"plain": 5, "limited": 2}
    assert statuses(worker_env) == {"delivering": 7, "pending": 3}
    # The limited endpoint's other three wait for the next second's window: a whole second
    # after the claim (compared with the claim's time, not with now(), which a slow machine
    # may already have carried past that second).
    with psycopg.connect(worker_env) as conn:
        waiting = conn.execute(
            "SELECT count(*) FROM deliveries WHERE status = 'pending'"
            " AND next_attempt_at > %s AND next_attempt_at = date_trunc('second', next_attempt_at)",
            before_claim,
        ).fetchone()
    assert waiting == (3,)


async def test_retry_after_is_honoured(client, worker_env, receiver):
    key = await make_key(worker_env)
    await add_endpoint(client, key, receiver, "busy")
    receiver.scripts["busy"] = [(429, {"Retry-After": "1"})]
    await ingest(client, key, 1)
    async with running_worker():
        await wait_for(lambda: statuses(worker_env) == {"succeeded": 1}, what="delivery")
    first, second = receiver.received
    assert second.at - first.at >= 0.9  # the schedule alone would retry after 0.1 s


async def test_priorities_use_separate_queues(client, worker_env, receiver):
    key = await make_key(worker_env)
    await add_endpoint(client, key, receiver, "p")
    await ingest(client, key, 50, priority="low")
    await ingest(client, key, 1, priority="high")
    async with running_worker(queues=["critical"]):
        await wait_for(lambda: len(receiver.received) == 1, what="the high-priority event")
    with psycopg.connect(worker_env) as conn:
        rows = conn.execute(
            "SELECT queue, status, count(*) FROM deliveries GROUP BY 1, 2"
        ).fetchall()
    assert sorted(rows) == [("bulk", "pending", 50), ("critical", "succeeded", 1)]


async def test_an_endpoint_failing_past_the_limit_is_disabled_with_a_reason(
    client, worker_env, receiver, monkeypatch
):
    monkeypatch.setenv("EVENTGATE_ENDPOINT_DISABLE_AFTER_SECONDS", "0.3")
    key = await make_key(worker_env)
    endpoint = await add_endpoint(client, key, receiver, "broken")
    receiver.scripts["broken"] = [500] * 10
    await ingest(client, key, 1)
    path = f"/v1/endpoints/{endpoint['id']}"
    async with running_worker():
        await wait_for(lambda: _disabled(client, key, path), what="the endpoint to be disabled")
    view = (await client.get(path, headers=auth(key))).json()
    assert view["disabled_reason"].startswith("failing continuously since")
    assert statuses(worker_env) == {"failed": 1}  # paused, not dropped


async def _disabled(client, key: str, path: str) -> bool:
    return not (await client.get(path, headers=auth(key))).json()["is_active"]
