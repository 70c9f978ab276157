"""Operational webhooks: a tenant's operational endpoints receive Eventgate's own events
(circuit opened and closed, endpoint disabled, dead letters at most once per window with a
count, source rejections, expiring keys, failed schedule runs), signed and retried like any
delivery, never about themselves and never in a loop."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg_pool import AsyncConnectionPool

from tests.helpers import (
    add_endpoint,
    auth,
    event_body,
    make_key,
    running_worker,
    wait_for,
)
from tests.workers.test_tasks import work_maintenance
from workers.enqueue import TaskBusy, run_task


def notices(receiver, path: str) -> list[dict]:
    """The operational events one receiver path got, in order."""
    return [r.body for r in receiver.at(path) if r.body["event_type"].startswith("eventgate.")]


def operational_events(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT event_type FROM events WHERE event_type LIKE 'eventgate.%%' ORDER BY id"
        ).fetchall()
    return [event_type for (event_type,) in rows]


async def test_operational_endpoints_take_only_eventgate_types(client, database_url, receiver):
    key = await make_key(database_url)
    ops = await add_endpoint(client, key, receiver, "ops", operational=True)
    assert ops["operational"] is True
    assert ops["event_types"] == ["eventgate.*"]
    refusals = [
        {"operational": True, "event_types": ["invoice.*"]},
        {"operational": True, "channels": ["customer-1"]},
        {"event_types": ["eventgate.endpoint.disabled"]},
    ]
    for body in refusals:
        answer = await client.post(
            "/v1/endpoints", json={"url": receiver.endpoint_url("x"), **body}, headers=auth(key)
        )
        assert answer.status_code == 400, body
    answer = await client.post(
        "/v1/events", json=event_body(event_type="eventgate.endpoint.disabled"), headers=auth(key)
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["details"] == {"field": "event_type"}
    # Back to a regular endpoint: its types must be named again.
    path = f"/v1/endpoints/{ops['id']}"
    answer = await client.patch(path, json={"operational": False}, headers=auth(key))
    assert answer.status_code == 400
    answer = await client.patch(
        path, json={"operational": False, "event_types": ["invoice.*"]}, headers=auth(key)
    )
    assert answer.json()["operational"] is False


async def test_circuits_dead_letters_and_recovery_are_reported_once_each(
    client, database_url, receiver, worker_env
):
    key = await make_key(database_url)
    await add_endpoint(client, key, receiver, "ops", operational=True)
    flaky = await add_endpoint(client, key, receiver, "flaky", event_types=["invoice.*"])
    receiver.scripts["flaky"] = [500] * 9  # three events, three tries each: all dead
    for n in range(3):
        await client.post("/v1/events", json=event_body(payload={"n": n}), headers=auth(key))
    async with running_worker():
        await wait_for(
            lambda: (
                {n["event_type"] for n in notices(receiver, "ops")}
                >= {"eventgate.endpoint.circuit_opened", "eventgate.delivery.dead_lettered"}
            ),
            timeout=30,
        )
        with psycopg.connect(database_url) as conn:
            await wait_for(
                lambda: (
                    conn.execute(
                        "SELECT count(*) FROM deliveries WHERE status = 'dead'"
                    ).fetchone()[0]
                    == 3
                ),
                timeout=30,
            )
    types = [n["event_type"] for n in notices(receiver, "ops")]
    assert types.count("eventgate.endpoint.circuit_opened") == 1
    assert types.count("eventgate.delivery.dead_lettered") == 1  # one per window
    opened = next(n for n in notices(receiver, "ops") if n["event_type"].endswith("opened"))
    assert opened["payload"]["endpoint_id"] == flaky["id"]
    assert opened["payload"]["consecutive_failures"] >= 5  # a batch may cross it by several
    dead = next(n for n in notices(receiver, "ops") if n["event_type"].endswith("lettered"))
    assert dead["payload"]["count"] == 1
    assert dead["payload"]["last_status_code"] == 500
    assert all(r.verified for r in receiver.at("ops"))
    assert notices(receiver, "flaky") == []
    with psycopg.connect(database_url) as conn:
        unreported = conn.execute(
            "SELECT unreported FROM operational_notices WHERE kind = 'delivery.dead_lettered'"
        ).fetchone()[0]
    assert unreported == 2  # counted, to be carried by the next notice

    # The receiver recovers: the dead letters go again and the circuit closes.
    since = {"since": "2000-01-01T00:00:00Z"}
    await client.post(f"/v1/endpoints/{flaky['id']}/recover", json=since, headers=auth(key))
    async with running_worker():
        await wait_for(
            lambda: (
                "eventgate.endpoint.circuit_closed"
                in [n["event_type"] for n in notices(receiver, "ops")]
            ),
            timeout=30,
        )


async def test_a_failing_operational_endpoint_is_never_told_about_itself_nor_loops(
    client, database_url, receiver, worker_env
):
    key = await make_key(database_url)
    await add_endpoint(client, key, receiver, "ops-down", operational=True)
    await add_endpoint(client, key, receiver, "ops-up", operational=True)
    await add_endpoint(client, key, receiver, "gone", event_types=["invoice.*"])
    receiver.scripts["gone"] = [410]
    receiver.scripts["ops-down"] = [500] * 50
    await client.post("/v1/events", json=event_body(), headers=auth(key))
    async with running_worker():
        await wait_for(lambda: len(notices(receiver, "ops-up")) == 1)
        # The down endpoint's tries of the notice run out (three), then nothing more comes.
        await wait_for(lambda: len(receiver.at("ops-down")) == 3, timeout=30)
        await asyncio.sleep(1.5)  # a poll or two more: its dead letter raises nothing
    assert len(receiver.at("ops-down")) == 3
    (disabled,) = notices(receiver, "ops-up")
    assert disabled["event_type"] == "eventgate.endpoint.disabled"
    assert "410" in disabled["payload"]["reason"]
    assert operational_events(database_url) == ["eventgate.endpoint.disabled"]


async def test_rejections_failed_runs_and_expiring_keys_are_reported(
    client, database_url, receiver, worker_env
):
    key = await make_key(database_url)
    await add_endpoint(client, key, receiver, "ops", operational=True)
    source = await client.post(
        "/v1/sources",
        json={"name": "stripe", "verification": {"scheme": "github"}, "event_type": "x"},
        headers=auth(key),
    )
    trigger = source.json()["source"]["trigger_path"]
    for _ in range(3):
        refused = await client.post(trigger, json={"a": 1}, headers={"X-Hub-Signature-256": "x"})
        assert refused.status_code == 401
    schema = {"type": "object", "required": ["n"]}
    await client.post("/v1/event-types", json={"name": "tick", "schema": schema}, headers=auth(key))
    schedule = await client.post(
        "/v1/schedules",
        json={"name": "t", "cron": "0 * * * *", "event_type": "tick", "payload": {"n": 1}},
        headers=auth(key),
    )
    await client.patch(
        "/v1/event-types/tick", json={"schema": {"required": ["m"]}}, headers=auth(key)
    )
    ran = await client.post(f"/v1/schedules/{schedule.json()['id']}/run", headers=auth(key))
    assert ran.json()["status"] == "failed"
    soon = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    await make_key(database_url, expires_at=datetime.fromisoformat(soon))
    for _ in range(2):
        async with AsyncConnectionPool(database_url, min_size=1, open=False) as pool:
            # In the minutes after hh:07 the worker's periodic deferrer has queued the run
            # already (its cron is 7 * * * *): the worker then runs that one.
            with contextlib.suppress(TaskBusy):
                await run_task(pool, "notify_expiring_keys")
        await work_maintenance()
    expected = {
        "eventgate.source.rejecting",
        "eventgate.schedule.run_failed",
        "eventgate.api_key.expiring",
    }
    assert sorted(operational_events(database_url)) == sorted(expected)
    async with running_worker():
        await wait_for(lambda: len(notices(receiver, "ops")) == 3)
    got = {n["event_type"]: n["payload"] for n in notices(receiver, "ops")}
    assert got["eventgate.source.rejecting"]["count"] == 1
    assert got["eventgate.source.rejecting"]["name"] == "stripe"
    assert "m" in got["eventgate.schedule.run_failed"]["error"]
    assert got["eventgate.api_key.expiring"]["expires_at"].startswith(soon[:16])
