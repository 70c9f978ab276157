"""A busy engine's promise to claim again: ingest announces after COMMIT, skips the NOTIFY a
promise makes a waste, announces when the promise is too short or its own round trip
outlasted it, and the engine keeps it."""

from __future__ import annotations

import time
import uuid

import psycopg
from psycopg_pool import AsyncConnectionPool

from app.events.services import _announce
from core.queues import DELIVERIES_DUE_CHANNEL
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
            " SET claims_at = EXCLUDED.claims_at",
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


async def test_an_ingest_announces_unless_a_promise_outlasts_its_round_trip(worker_env):
    async with (
        await psycopg.AsyncConnection.connect(worker_env, autocommit=True) as listener,
        await psycopg.AsyncConnection.connect(worker_env, autocommit=True) as conn,
    ):
        await listener.execute(f"LISTEN {DELIVERIES_DUE_CHANNEL}")
        promised = events.FanOut([], {}, {"default": 0.5})
        await _announce(conn, promised, started=time.monotonic())  # well within the slack
        assert await _notifications(listener) == []
        await _announce(conn, promised, started=time.monotonic() - 0.6)
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


async def test_a_busy_engine_promises_and_keeps_its_promise_when_it_goes_quiet(
    client, worker_env, receiver, monkeypatch
):
    from core.settings import Settings
    from workers import engine as engine_module
    from workers.engine import DeliveryEngine

    monkeypatch.setenv("EVENTGATE_DELIVERY_POLL_SECONDS", "60")  # no poll within the test
    monkeypatch.setattr(engine_module, "CLAIM_PROMISE_SECONDS", 2.0)
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

                async def promised() -> bool:
                    cur = await conn.execute(
                        "SELECT claims_at > clock_timestamp() + interval '1 s'"
                        " FROM delivery_claim_promises WHERE queue = 'default'"
                    )
                    row = await cur.fetchone()
                    return bool(row and row[0])

                await wait_for(promised, timeout=5, what="the busy engine's promise")
                fan_out = await events.insert_with_fan_out(
                    conn, [event_row(tenant_id)], only_unchecked=True, after_commit=True
                )
                assert fan_out.wake_queues == []
                assert fan_out.due_queues["default"] > 1.0 - 0.1  # left to the promise
                # No NOTIFY and no poll for a minute: only the promised claim finds it.
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
