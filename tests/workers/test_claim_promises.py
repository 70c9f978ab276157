"""A busy engine's promise to claim again: ingest skips the NOTIFY it would waste, announces
when the promise is too short or its own round trip outlasted it, and the engine keeps it."""

from __future__ import annotations

import time
import uuid

import psycopg
from psycopg_pool import AsyncConnectionPool

from app.events.services import _announce_late
from core.queues import DELIVERIES_DUE_CHANNEL
from db import events
from tests.helpers import add_endpoint, event_row, free_port, make_key, wait_for


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


async def test_ingest_skips_the_notify_only_while_a_promise_has_slack(client, worker_env, receiver):
    key = await make_key(worker_env)
    await add_endpoint(client, key, receiver, "promised")
    tenant_id = await _tenant_id(worker_env)
    async with (
        await psycopg.AsyncConnection.connect(worker_env, autocommit=True) as listener,
        await psycopg.AsyncConnection.connect(worker_env, autocommit=True) as conn,
    ):
        await listener.execute(f"LISTEN {DELIVERIES_DUE_CHANNEL}")

        async def insert(may_skip: bool) -> events.FanOut:
            return await events.insert_with_fan_out(
                conn, [event_row(tenant_id)], only_unchecked=True, may_skip=may_skip
            )

        fan_out = await insert(may_skip=True)  # no promise yet
        assert (fan_out.wake_queues, fan_out.quiet_queues) == (["default"], {})
        assert await _notifications(listener) == ["default"]

        await _promise(worker_env, 60.0)
        fan_out = await insert(may_skip=True)
        assert fan_out.wake_queues == []
        assert 0.9 < fan_out.quiet_queues["default"] <= 1.0  # the slack, at most a second
        assert await _notifications(listener) == []
        fan_out = await insert(may_skip=False)  # a caller that cannot tell when it commits
        assert (fan_out.wake_queues, fan_out.quiet_queues) == (["default"], {})
        assert await _notifications(listener) == ["default"]

        await _promise(worker_env, 0.001)  # less slack than the least worth relying on
        fan_out = await insert(may_skip=True)
        assert (fan_out.wake_queues, fan_out.quiet_queues) == (["default"], {})
        assert await _notifications(listener) == ["default"]


async def test_an_ingest_slower_than_the_promise_announces_after_commit(worker_env):
    async with (
        await psycopg.AsyncConnection.connect(worker_env, autocommit=True) as listener,
        AsyncConnectionPool(worker_env, min_size=1, kwargs={"autocommit": True}) as pool,
    ):
        await listener.execute(f"LISTEN {DELIVERIES_DUE_CHANNEL}")
        quiet = events.FanOut([], {}, {"default": 0.5})
        await _announce_late(pool, quiet, started=time.monotonic())  # well within the slack
        assert await _notifications(listener) == []
        await _announce_late(pool, quiet, started=time.monotonic() - 0.6)
        assert await _notifications(listener) == ["default"]


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
                    conn, [event_row(tenant_id)], only_unchecked=True, may_skip=True
                )
                assert fan_out.wake_queues == []
                assert "default" in fan_out.quiet_queues
                # No NOTIFY and no poll for a minute: only the promised claim finds it.
                await wait_for(lambda: len(receiver.received) == 6, timeout=10, what="sixth")
            finally:
                await engine.stop(1.0)


async def test_a_late_announcement_lost_with_the_database_fails_no_ingest(caplog):
    url = f"postgresql://eventgate@127.0.0.1:{free_port()}/gone"  # nothing listens there
    async with AsyncConnectionPool(url, min_size=0, max_size=1, timeout=1.0, open=False) as pool:
        quiet = events.FanOut([], {}, {"default": 0.0})
        await _announce_late(pool, quiet, started=time.monotonic())  # stored: no error raised
    assert "announcing the queues ['default'] after ingest failed" in caplog.text
