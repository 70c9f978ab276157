"""Firing schedules: each due tick becomes one event (with its deliveries) and one run, in one
transaction, exactly once: the due schedule is locked (SKIP LOCKED, so firers never wait on
each other) and schedule_runs_tick_key refuses a second run of a tick whatever happens."""

from __future__ import annotations

import uuid
from datetime import datetime

import psycopg
from psycopg import AsyncConnection

from core import cron
from core.json_schemas import payload_problem
from db import event_types, events, operational
from db.ids import new_id
from db.query import fetch_one
from db.schedules import COLUMNS, RUN_COLUMNS, Run, Schedule

# Fired in one call at most; the next call (a minute on) goes on with the rest.
MAX_PER_CALL = 10_000

# The most overdue schedule that no other firer holds (schedules_due_idx).
CLAIM_DUE = f"""
SELECT {COLUMNS} FROM schedules
WHERE NOT paused AND next_run_at <= %(now)s
ORDER BY next_run_at
LIMIT 1
FOR UPDATE SKIP LOCKED
"""

# Record a run; a cron tick that already has one returns nothing (schedule_runs_tick_key).
INSERT_RUN = f"""
INSERT INTO schedule_runs (id, tenant_id, schedule_id, tick, trigger, status, event_id, error,
                           missed)
VALUES (%(id)s, %(tenant_id)s, %(schedule_id)s, %(tick)s, %(trigger)s, %(status)s,
        %(event_id)s, %(error)s, %(missed)s)
ON CONFLICT (tenant_id, schedule_id, tick) WHERE trigger = 'cron' DO NOTHING
RETURNING {RUN_COLUMNS}
"""

# Move a schedule on to its next tick (schedules_pkey).
ADVANCE = """
UPDATE schedules SET next_run_at = coalesce(%(next_run_at)s, next_run_at), last_run_at = %(at)s
WHERE tenant_id = %(tenant_id)s AND id = %(id)s
"""


class _Refused(Exception):
    """The event cannot be stored (its payload fails its type's schema)."""


class _AlreadyRun(Exception):
    """The tick has a run already: this one's event must go."""


def event_of(schedule: Schedule, tick: datetime) -> events.NewEvent:
    """The event a run of the schedule ingests."""
    metadata = {
        "priority": "normal",
        "schedule_id": str(schedule.id),
        "schedule_tick": tick.isoformat(),
    }
    return events.NewEvent(
        id=new_id(),
        tenant_id=schedule.tenant_id,
        source=schedule.source,
        event_type=schedule.event_type,
        payload=schedule.payload,
        metadata=metadata,
        idempotency_key=None,
        correlation_id=None,
        priority="normal",
        channels=schedule.channels,
    )


async def fire_due(conn: AsyncConnection, now: datetime, grace_seconds: float) -> list[Run]:
    """Fire every schedule due at `now`, one transaction each; returns the runs recorded."""
    runs: list[Run] = []
    for _ in range(MAX_PER_CALL):
        async with conn.transaction():
            schedule = await fetch_one(conn, CLAIM_DUE, {"now": now}, Schedule)
            if schedule is None:
                break
            run = await fire_tick(conn, schedule, now, grace_seconds)
        if run is not None:
            runs.append(run)
    return runs


async def fire_tick(
    conn: AsyncConnection, schedule: Schedule, now: datetime, grace_seconds: float
) -> Run | None:
    """Run a locked, due schedule once for its latest due tick (the earlier ones it stands
    for are `missed`: caught up by this run, or skipped with catch_up off), then move it on."""
    tick, earlier = cron.due_ticks(schedule.cron, schedule.timezone, schedule.next_run_at, now)
    if schedule.catch_up or cron.seconds_late(tick, now) <= grace_seconds:
        run = await produce(conn, schedule, tick, "cron", missed=earlier)
    else:
        reason = "missed while no worker ran (catch_up is off)"
        run = await _record(conn, schedule, tick, "cron", earlier, None, reason, "skipped")
    following = cron.next_tick(schedule.cron, schedule.timezone, max(now, tick))
    params = {"tenant_id": schedule.tenant_id, "id": schedule.id, "at": now}
    await conn.execute(ADVANCE, {**params, "next_run_at": following})
    return run


async def run_now(conn: AsyncConnection, schedule: Schedule, now: datetime) -> Run:
    """Run a (locked) schedule by hand now; its cron ticks are not affected."""
    run = await produce(conn, schedule, now, "manual", missed=0)
    assert run is not None  # manual runs are never refused as a repeat
    params = {"tenant_id": schedule.tenant_id, "id": schedule.id, "at": now}
    await conn.execute(ADVANCE, {**params, "next_run_at": None})
    return run


async def produce(
    conn: AsyncConnection, schedule: Schedule, tick: datetime, trigger: str, missed: int
) -> Run | None:
    """Ingest the schedule's event and record the run (failed, with the reason, when the
    event cannot be stored); None when the tick was already run (nothing is stored)."""
    event = event_of(schedule, tick)
    try:
        async with conn.transaction():  # a savepoint: a repeated tick takes its event back
            problem = await _ingest(conn, event)
            event_id = None if problem else event.id
            status = "failed" if problem else "succeeded"
            run = await _record(conn, schedule, tick, trigger, missed, event_id, problem, status)
            if run is None:
                raise _AlreadyRun
            if problem:
                await operational.emit(
                    conn, schedule.tenant_id, "schedule.run_failed", _failed(run, schedule)
                )
    except _AlreadyRun:
        return None
    return run


def _failed(run: Run, schedule: Schedule) -> dict[str, object]:
    """The payload of eventgate.schedule.run_failed."""
    return {
        "schedule_id": str(schedule.id),
        "name": schedule.name,
        "run_id": str(run.id),
        "tick": run.tick.isoformat(),
        "trigger": run.trigger,
        "error": run.error,
    }


async def _ingest(conn: AsyncConnection, event: events.NewEvent) -> str | None:
    """Store the event with its deliveries, or say why it cannot be (then nothing is)."""
    try:
        async with conn.transaction():
            fan_out = await events.insert_with_fan_out(conn, [event])
            version = fan_out.schema_versions.get(event.event_type)
            if version is not None:
                tenant, name = event.tenant_id, event.event_type
                schema = await event_types.get_schema(conn, tenant, name, version)
                problem = payload_problem(schema, event.payload) if schema else None
                if problem:
                    raise _Refused(f"the {name} {problem}")
    except _Refused as exc:
        return str(exc)
    except psycopg.errors.CheckViolation as exc:  # no partition for today (none rotated yet)
        return exc.diag.message_primary or "the event could not be stored"
    return None


async def _record(
    conn: AsyncConnection,
    schedule: Schedule,
    tick: datetime,
    trigger: str,
    missed: int,
    event_id: uuid.UUID | None,
    error: str | None,
    status: str,
) -> Run | None:
    params = {
        "id": new_id(),
        "tenant_id": schedule.tenant_id,
        "schedule_id": schedule.id,
        "tick": tick,
        "trigger": trigger,
        "status": status,
        "event_id": event_id,
        "error": error,
        "missed": missed,
    }
    return await fetch_one(conn, INSERT_RUN, params, Run)
