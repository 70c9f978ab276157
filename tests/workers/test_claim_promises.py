"""A busy engine's promise to keep claiming: ingest announces after COMMIT, skips the NOTIFY a
promise makes a waste, announces when the promise is too short or its own round trip
outlasted the grace; the engine's claims make and withdraw the promise, and it keeps it. A
claim's COMMIT does not wait for the WAL flush."""

from __future__ import annotations

import time
import uuid

import psycopg
from psycopg_pool import AsyncConnectionPool

from app.events.services import _announce
from core.queues import BUSY_PROMISE_SECONDS, DELIVERIES_DUE_CHANNEL, PROMISE_GRACE_SECONDS
from db import events
from tests.helpers import add_endpoint, event_row, make_key, wait_for


async def _tenant_id(url: str) -> uuid.UUID:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        return (await (await conn.execute("SELECT id FROM tenants")).fetchone())[0]


async def _notifications(listener: psycopg.AsyncConnection) -> list[str]:
    """What reached the listener within a moment."""
    return [n.payload async for n in listener.notifies(timeout=0.3)]


async def _promise(url: str, seconds: float) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO delivery_claim_promises VALUES ('default', clock_timestamp()"
            " + make_interval(secs => %(s)s)) ON CONFLICT (queue) DO UPDATE"
            " SET busy_until = EXCLUDED.busy_until",
            {"s": seconds},
        )


async def test_ingest_leaves_the_announcement_to_after_commit_with_the_promise_it_found(
    client, worker_env, receiver
):
    key = await make_key(worker_env)
    await add_endpoint(client, key, receiver, "promised")
    tenant_id = await _tenant_id(worker_env)
    async with (
        await psycopg.AsyncConnection.connect(worker_env, autocommit=True) as listener,
        await psycopg.AsyncConnection.connect(worker_env, autocommit=True) as conn,
    ):
        await listener.execute(f"LISTEN {DELIVERIES_DUE_CHANNEL}")

        async def insert(after_commit: bool) -> events.FanOut:
            return await events.insert_with_fan_out(
                conn, [event_row(tenant_id)], only_unchecked=True, after_commit=after_commit
            )

        fan_out = await insert(after_commit=True)  # no promise yet
        assert (fan_out.wake_queues, fan_out.due_queues) == ([], {"default": 0.0})
        assert await _notifications(listener) == []  # the statement sent no NOTIFY

        await _promise(worker_env, 60.0)
        fan_out = await insert(after_commit=True)
        assert fan_out.wake_queues == []
        assert 0.9 < fan_out.due_queues["default"] <= 1.0  # the slack, at most a second
        assert await _notifications(listener) == []
        fan_out = await insert(after_commit=False)  # a caller that cannot tell when it commits
        assert (fan_out.wake_queues, fan_out.due_queues) == (["default"], {})
        assert await _notifications(listener) == ["default"]


async def test_an_ingest_announces_unless_its_round_trip_stayed_within_the_grace(worker_env):
    async with (
        await psycopg.AsyncConnection.connect(worker_env, autocommit=True) as listener,
        await psycopg.AsyncConnection.connect(worker_env, autocommit=True) as conn,
    ):
        await listener.execute(f"LISTEN {DELIVERIES_DUE_CHANNEL}")
        promised = events.FanOut([], {}, {"default": 0.5})
        await _announce(conn, promised, started=time.monotonic())  # well within the grace
        assert await _notifications(listener) == []
        # Slack left, but its COMMIT may have come after the claim that withdrew the promise
        # and the claim a grace later.
        await _announce(conn, promised, started=time.monotonic() - PROMISE_GRACE_SECONDS)
        assert await _notifications(listener) == ["default"]
        unpromised = events.FanOut([], {}, {"default": 0.0, "critical": 0.001})
        await _announce(conn, unpromised, started=time.monotonic())  # none, or too little slack
        assert sorted(await _notifications(listener)) == ["critical", "default"]


async def test_events_posted_to_an_idle_engine_are_announced_once_each(
    client, worker_env, receiver
):
    key = await make_key(worker_env)
    await add_endpoint(client, key, receiver, "idle")
    async with await psycopg.AsyncConnection.connect(worker_env, autocommit=True) as listener:
        await listener.execute(f"LISTEN {DELIVERIES_DUE_CHANNEL}")
        for n in range(3):
            body = {"source": "test", "event_type": "idle.ping", "payload": {"n": n}}
            answer = await client.post("/v1/events", json=body, headers={"X-API-Key": key})
            assert answer.status_code == 201, answer.text
        assert await _notifications(listener) == ["default"] * 3


async def _promised_for(conn: psycopg.AsyncConnection) -> float | None:
    """Seconds the default queue's promise has left (negative: lapsed or withdrawn)."""
    cur = await conn.execute(
        "SELECT extract(epoch FROM busy_until - clock_timestamp())::float8"
        " FROM delivery_claim_promises WHERE queue = 'default'"
    )
    row = await cur.fetchone()
    return row[0] if row else None


async def test_a_claim_that_leases_several_promises_and_one_that_leases_fewer_withdraws(
    client, worker_env, receiver
):
    from core.settings import Settings
    from db import delivery_queue

    key = await make_key(worker_env)
    await add_endpoint(client, key, receiver, "claims")
    tenant_id = await _tenant_id(worker_env)
    settings = Settings.from_env()
    async with await psycopg.AsyncConnection.connect(worker_env, autocommit=True) as conn:

        async def claim(promise: float) -> int:
            leased, others = await delivery_queue.claim_plain(
                conn, "default", 100, settings.circuit_failure_threshold, 30.0, 0.0, promise
            )
            assert others == 0
            return len(leased)

        await events.insert_with_fan_out(conn, [event_row(tenant_id)])
        assert await claim(BUSY_PROMISE_SECONDS) == 1
        assert await _promised_for(conn) is None  # one found: no promise to make or withdraw
        await events.insert_with_fan_out(conn, [event_row(tenant_id), event_row(tenant_id)])
        assert await claim(0.0) == 2
        assert await _promised_for(conn) is None  # a follower (no promise) writes nothing
        await events.insert_with_fan_out(conn, [event_row(tenant_id), event_row(tenant_id)])
        assert await claim(BUSY_PROMISE_SECONDS) == 2
        left = await _promised_for(conn)
        assert left is not None
        assert 0 < left <= BUSY_PROMISE_SECONDS
        assert await claim(BUSY_PROMISE_SECONDS) == 0
        withdrawn = await _promised_for(conn)
        assert withdrawn is not None
        assert withdrawn <= 0
        # Nothing live to withdraw: a quiet engine's claims write nothing.
        await conn.execute("UPDATE delivery_claim_promises SET busy_until = '2000-01-01'")
        assert await claim(BUSY_PROMISE_SECONDS) == 0
        assert await _promised_for(conn) < -1_000_000


async def _synchronous_commit(conn: psycopg.AsyncConnection) -> str:
    row = await (await conn.execute("SHOW synchronous_commit")).fetchone()
    assert row is not None
    return str(row[0])


async def test_a_claims_commit_does_not_wait_for_the_wal_flush(client, worker_env, receiver):
    from core.settings import Settings
    from db import delivery_queue

    key = await make_key(worker_env)
    await add_endpoint(client, key, receiver, "relaxed")
    tenant_id = await _tenant_id(worker_env)
    threshold = Settings.from_env().circuit_failure_threshold
    async with await psycopg.AsyncConnection.connect(worker_env, autocommit=True) as conn:
        await events.insert_with_fan_out(conn, [event_row(tenant_id)])
        await conn.execute("SET synchronous_commit = on")  # as production runs (tests: off)
        async with conn.transaction():  # as the claim's own transaction, seen from inside
            leased, _ = await delivery_queue.claim_plain(conn, "default", 10, threshold, 30.0)
            assert len(leased) == 1
            assert await _synchronous_commit(conn) == "off"
        # For that transaction alone: the connection's next ones wait for the flush again.
        assert await _synchronous_commit(conn) == "on"
        row = await (await conn.execute("SELECT status FROM deliveries")).fetchone()
        assert row == ("delivering",)


async def test_an_engine_going_quiet_claims_once_more_a_grace_later(
    client, worker_env, receiver, monkeypatch
):
    from core.settings import Settings
    from workers import engine as engine_module
    from workers.engine import DeliveryEngine

    monkeypatch.setenv("EVENTGATE_DELIVERY_POLL_SECONDS", "60")  # no poll within the test
    monkeypatch.setattr(engine_module, "PROMISE_GRACE_SECONDS", 1.0)
    key = await make_key(worker_env)
    await add_endpoint(client, key, receiver, "busy")
    tenant_id = await _tenant_id(worker_env)
    async with await psycopg.AsyncConnection.connect(worker_env, autocommit=True) as conn:
        for _ in range(5):  # due before the engine starts: its first claim finds several
            await events.insert_with_fan_out(conn, [event_row(tenant_id)])
        async with AsyncConnectionPool(worker_env, min_size=1, max_size=4) as pool:
            engine = DeliveryEngine(pool, Settings.from_env(), ["default"])
            engine.start()
            try:
                await wait_for(lambda: len(receiver.received) == 5, what="the first five")

                async def withdrawn() -> bool:
                    left = await _promised_for(conn)
                    return left is not None and left <= 0

                await wait_for(withdrawn, timeout=5, what="the quiet claim's withdrawal")
                # As an ingest that read the promise just before it was withdrawn: committed
                # after that claim, and no NOTIFY.
                fan_out = await events.insert_with_fan_out(
                    conn, [event_row(tenant_id)], only_unchecked=True, after_commit=True
                )
                assert fan_out.wake_queues == []
                # No NOTIFY and no poll for a minute: only the claim a grace later finds it.
                await wait_for(lambda: len(receiver.received) == 6, timeout=10, what="sixth")
            finally:
                await engine.stop(1.0)


async def test_an_announcement_lost_with_the_connection_fails_no_ingest(worker_env, caplog):
    async with (
        await psycopg.AsyncConnection.connect(worker_env, autocommit=True) as admin,
        await psycopg.AsyncConnection.connect(worker_env, autocommit=True) as conn,
    ):
        await admin.execute("SELECT pg_terminate_backend(%s)", [conn.info.backend_pid])
        unpromised = events.FanOut([], {}, {"default": 0.0})
        await _announce(conn, unpromised, started=time.monotonic())  # stored: no error raised
    assert "announcing the queues ['default'] after ingest failed" in caplog.text
