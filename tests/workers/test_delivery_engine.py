"""The delivery engine's wake-ups: a lost notification, a dropped listener and two workers."""

from __future__ import annotations

import signal
import time

import psycopg

from db import events
from tests.helpers import (
    add_endpoint,
    event_row,
    ingest,
    make_key,
    running_worker,
    statuses,
    wait_for,
)
from tests.workers.test_worker_lifecycle import EVENTGATE_WORKER, exit_code, start_worker


async def _listener_pid(url: str) -> int | None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN %%eventgate_deliveries_due%%'"
        )
        row = await cur.fetchone()
    return row[0] if row else None


async def test_a_lost_wake_up_is_recovered_by_the_poll(client, worker_env, receiver, monkeypatch):
    monkeypatch.setenv("EVENTGATE_DELIVERY_POLL_SECONDS", "1")
    key = await make_key(worker_env)
    endpoint = await add_endpoint(client, key, receiver, "lost")
    await client.post(f"/v1/endpoints/{endpoint['id']}/disable", headers={"X-API-Key": key})
    await ingest(client, key, 1)  # parked behind the disabled endpoint: no notification
    async with running_worker():
        await wait_for(lambda: _listener_pid(worker_env), what="the engine listening")
        # Made due behind the engine's back, as if its NOTIFY had been lost.
        async with await psycopg.AsyncConnection.connect(worker_env, autocommit=True) as conn:
            await conn.execute("UPDATE endpoints SET is_active = true, disabled_reason = NULL")
            await conn.execute("UPDATE deliveries SET next_attempt_at = now()")
        made_due = time.monotonic()
        await wait_for(lambda: len(receiver.received) == 1, timeout=10, what="the delivery")
        took = time.monotonic() - made_due
    assert took < 1.0 + 0.9  # within one poll interval (and the send itself)
    assert statuses(worker_env) == {"succeeded": 1}


async def test_a_dropped_listener_reconnects_and_is_woken_again(
    client, worker_env, receiver, monkeypatch
):
    monkeypatch.setenv("EVENTGATE_DELIVERY_POLL_SECONDS", "30")  # only a NOTIFY can wake it
    key = await make_key(worker_env)
    await add_endpoint(client, key, receiver, "drop")
    async with running_worker():
        await wait_for(lambda: _listener_pid(worker_env), what="the engine listening")
        first = await _listener_pid(worker_env)
        async with await psycopg.AsyncConnection.connect(worker_env, autocommit=True) as conn:
            await conn.execute("SELECT pg_terminate_backend(%s)", (first,))

            async def listening_again() -> bool:
                return (await _listener_pid(worker_env)) not in (None, first)

            await wait_for(listening_again, timeout=10, what="a new LISTEN connection")
            cur = await conn.execute("SELECT id FROM tenants")
            tenant_id = (await cur.fetchone())[0]
            await events.insert_with_fan_out(conn, [event_row(tenant_id)])
        await wait_for(lambda: len(receiver.received) == 1, timeout=10, what="the delivery")


async def test_two_workers_share_the_work_and_deliver_each_once(
    client, worker_env, receiver, tmp_path
):
    key = await make_key(worker_env)
    await add_endpoint(client, key, receiver, "a")
    await add_endpoint(client, key, receiver, "b")
    logs = [tmp_path / f"w{n}.log" for n in (1, 2)]
    workers = [start_worker(worker_env, log, EVENTGATE_WORKER) for log in logs]
    try:
        # Both running (a SIGTERM before a worker has started kills it rather than stops it).
        await wait_for(
            lambda: all(b"Starting worker" in log.read_bytes() for log in logs),
            timeout=30,
            what="both workers started",
        )
        sent: list[str] = []
        for _ in range(6):  # while both workers run: the engines are woken by NOTIFY
            sent += await ingest(client, key, 50)
        await wait_for(
            lambda: statuses(worker_env) == {"succeeded": 600}, timeout=60, what="every delivery"
        )
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            assert await exit_code(worker, 40) == 0
    arrived = [(r.path, r.body["id"]) for r in receiver.received]
    assert len(arrived) == 600
    assert set(arrived) == {(p, e) for p in ("a", "b") for e in sent}


async def test_engines_count_each_other_and_split_the_notifications(worker_env, monkeypatch):
    from psycopg_pool import AsyncConnectionPool

    from core.settings import Settings
    from workers import engine as engine_module
    from workers.engine import DeliveryEngine

    monkeypatch.setattr(engine_module, "PEERS_REFRESH_SECONDS", 0.1)
    settings = Settings.from_env()
    async with AsyncConnectionPool(worker_env, min_size=1, max_size=4) as pool:
        engines = [DeliveryEngine(pool, settings, ["default"]) for _ in range(2)]
        for engine in engines:
            engine.start()
        try:
            await wait_for(
                lambda: sorted(e.peers for e in engines) == [(2, 0), (2, 1)],
                what="each engine knowing its place among two",
            )
            first, second = engines
            pid = first.peers[1]  # a sender pid that falls to the first engine
            for engine in engines:
                engine.dispatchers["default"].due.clear()
                engine._route("default", pid)
            assert first.dispatchers["default"].due.is_set()  # at once
            assert not second.dispatchers["default"].due.is_set()
            assert second.dispatchers["default"].deferred  # a moment later
            await wait_for(lambda: not second.dispatchers["default"].deferred, timeout=1)
        finally:
            for engine in engines:
                await engine.stop(1.0)
    # Alone again, an engine answers every notification at once.
    async with AsyncConnectionPool(worker_env, min_size=1, max_size=4) as pool:
        alone = DeliveryEngine(pool, settings, ["default"])
        alone.start()
        try:
            await wait_for(lambda: alone.listening.is_set(), what="listening")
            await wait_for(lambda: alone.peers == (1, 0), what="the engine alone")
            pid = 12345
            alone.dispatchers["default"].due.clear()
            alone._route("default", pid)
            assert alone.dispatchers["default"].due.is_set()
        finally:
            await alone.stop(1.0)


def test_claims_are_paced_by_what_the_last_one_found_up_to_a_most():
    from workers.engine import CLAIM_PACING_MOST_SECONDS, CLAIM_PACING_SECONDS, claim_pacing

    assert claim_pacing(2) == 2 * CLAIM_PACING_SECONDS
    assert claim_pacing(3) > claim_pacing(2)
    assert claim_pacing(99) == CLAIM_PACING_MOST_SECONDS
