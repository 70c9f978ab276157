"""The delivery engine's wake-ups: a lost notification, a dropped listener and two workers."""

from __future__ import annotations

import asyncio
import signal
import time

import psycopg

from db import events
from tests.helpers import (
    WORKER_ENV,
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
    client, worker_env, receiver, tmp_path, monkeypatch
):
    # Only a second claim of a leased delivery may send it twice here: on a loaded machine
    # the tests' 2 s timeout can end a try the receiver got, whose retry is a fair duplicate.
    monkeypatch.setitem(WORKER_ENV, "EVENTGATE_DELIVERY_TIMEOUT_SECONDS", "10")
    monkeypatch.setitem(WORKER_ENV, "EVENTGATE_DELIVERY_LEASE_SECONDS", "30")
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


async def _notify_due(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("NOTIFY eventgate_deliveries_due, 'default'")


def _record_wakes(engine, name: str, woken: list[str]) -> None:
    engine.dispatchers["default"].wake = lambda: woken.append(name)


async def test_only_the_first_engine_listens_the_others_poll_and_one_takes_over(
    worker_env, monkeypatch
):
    from psycopg_pool import AsyncConnectionPool

    from core.settings import Settings
    from workers import engine as engine_module
    from workers.engine import FOLLOWER_LATE_SECONDS, FOLLOWER_POLL_SECONDS, DeliveryEngine

    monkeypatch.setattr(engine_module, "PEERS_REFRESH_SECONDS", 0.1)
    settings = Settings.from_env()
    async with AsyncConnectionPool(worker_env, min_size=1, max_size=4) as pool:
        first = DeliveryEngine(pool, settings, ["default"])
        first.start()
        await wait_for(lambda: first.listening.is_set(), what="the first engine connected")
        second = DeliveryEngine(pool, settings, ["default"])
        second.start()
        try:
            await wait_for(
                lambda: (first.peers, second.peers) == ((2, 0), (2, 1)),
                what="each engine knowing its place among two",
            )
            await wait_for(
                lambda: second.dispatchers["default"].poll_seconds == FOLLOWER_POLL_SECONDS,
                what="the second engine polling",
            )
            assert first.dispatchers["default"].poll_seconds == settings.delivery_poll_seconds
            assert first.dispatchers["default"].late_seconds == 0
            assert second.dispatchers["default"].late_seconds == FOLLOWER_LATE_SECONDS
            woken: list[str] = []
            _record_wakes(first, "first", woken)
            _record_wakes(second, "second", woken)
            await _notify_due(worker_env)
            await wait_for(lambda: woken == ["first"], timeout=5, what="the first woken")
            await asyncio.sleep(0.3)
            assert woken == ["first"]  # the second heard nothing: it does not listen
            await first.stop(1.0)
            await wait_for(lambda: second.peers == (1, 0), what="the second engine alone")
            await wait_for(
                lambda: (
                    second.dispatchers["default"].poll_seconds == settings.delivery_poll_seconds
                ),
                what="the second engine listening instead of polling",
            )
            woken.clear()
            await _notify_due(worker_env)
            await wait_for(lambda: "second" in woken, timeout=5, what="the second woken")
        finally:
            await first.stop(1.0)
            await second.stop(1.0)


async def test_a_busy_engine_reads_its_notifications_in_rounds_and_loses_none(worker_env):
    from psycopg_pool import AsyncConnectionPool

    from core.settings import Settings
    from workers.engine import DeliveryEngine

    settings = Settings.from_env()
    async with AsyncConnectionPool(worker_env, min_size=1, max_size=4) as pool:
        engine = DeliveryEngine(pool, settings, ["default", "critical"])
        engine.start()
        try:
            await wait_for(lambda: engine.listening.is_set(), what="listening")
            await asyncio.sleep(0.2)  # LISTEN issued, start-up wake-ups done
            woken: list[str] = []
            _record_wakes(engine, "default", woken)
            engine.dispatchers["critical"].wake = lambda: woken.append("critical")
            engine.dispatchers["default"].found = 2  # claiming by itself: no reads between
            async with await psycopg.AsyncConnection.connect(worker_env, autocommit=True) as c:
                for queue in ("critical", "default", "critical"):
                    await c.execute("SELECT pg_notify('eventgate_deliveries_due', %s)", (queue,))
            await wait_for(lambda: len(woken) == 3, timeout=5, what="every notification read")
            assert sorted(woken) == ["critical", "critical", "default"]
        finally:
            await engine.stop(1.0)


async def test_an_engine_that_follows_claims_only_what_has_waited(client, worker_env, receiver):
    from psycopg_pool import AsyncConnectionPool

    from core.settings import Settings
    from workers.delivery import claim

    key = await make_key(worker_env)
    await add_endpoint(client, key, receiver, "late")
    await ingest(client, key, 1)
    settings = Settings.from_env()
    async with AsyncConnectionPool(worker_env, kwargs={"autocommit": True}) as pool:
        assert await claim(pool, "default", settings, late=5.0) == []
        async with pool.connection() as conn:
            await conn.execute("UPDATE deliveries SET next_attempt_at = now() - interval '6 s'")
        assert len(await claim(pool, "default", settings, late=5.0)) == 1


def test_claims_are_paced_by_what_the_last_one_found_up_to_a_most():
    from workers.engine import CLAIM_PACING_MOST_SECONDS, CLAIM_PACING_SECONDS, claim_pacing

    assert claim_pacing(2) == 2 * CLAIM_PACING_SECONDS
    assert claim_pacing(3) > claim_pacing(2)
    assert claim_pacing(99) == CLAIM_PACING_MOST_SECONDS


async def test_a_follower_backs_off_while_its_polls_find_nothing(client, worker_env, receiver):
    from psycopg_pool import AsyncConnectionPool

    from core.settings import Settings
    from workers.engine import (
        FOLLOWER_LATE_SECONDS,
        FOLLOWER_POLL_MOST_SECONDS,
        FOLLOWER_POLL_SECONDS,
        QueueDispatcher,
    )

    key = await make_key(worker_env)
    await add_endpoint(client, key, receiver, "followed")
    settings = Settings.from_env()
    async with AsyncConnectionPool(worker_env, kwargs={"autocommit": True}) as pool:
        follower = QueueDispatcher("default", pool, settings)
        follower.poll_seconds, follower.late_seconds = FOLLOWER_POLL_SECONDS, FOLLOWER_LATE_SECONDS
        waits = []
        for _ in range(6):
            await follower._claim_while_due()  # nothing is due
            waits.append(follower.poll_wait())
        assert waits[0] == 2 * FOLLOWER_POLL_SECONDS
        assert waits == sorted(waits)
        assert waits[-1] == min(FOLLOWER_POLL_MOST_SECONDS, settings.delivery_poll_seconds)
        # A delivery left waiting is claimed at the next poll, and the follower polls often
        # again.
        await ingest(client, key, 1)
        await asyncio.sleep(FOLLOWER_LATE_SECONDS * 1.5)
        await follower._claim_while_due()
        assert follower.poll_wait() == FOLLOWER_POLL_SECONDS
        await wait_for(lambda: len(receiver.received) == 1, what="the delivery")
        await asyncio.gather(*follower.in_flight)
