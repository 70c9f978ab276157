"""SQL for schedules (a tenant's recurring events) and the reading of their runs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection

from db.query import as_jsonb, fetch_all, fetch_one


class ScheduleColumns(msgspec.Struct, kw_only=True):
    """What a schedule is given (a stored row and a new one alike)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    cron: str
    timezone: str
    event_type: str
    source: str
    payload: dict[str, Any]
    channels: list[str]
    catch_up: bool
    paused: bool
    next_run_at: datetime


class Schedule(ScheduleColumns, kw_only=True):
    """One schedules row."""

    last_run_at: datetime | None
    created_at: datetime
    updated_at: datetime


class Run(msgspec.Struct):
    """One schedule_runs row."""

    id: uuid.UUID
    schedule_id: uuid.UUID
    tick: datetime
    trigger: str
    status: str
    event_id: uuid.UUID | None
    error: str | None
    missed: int
    created_at: datetime


COLUMNS = (
    "id, tenant_id, name, cron, timezone, event_type, source, payload, channels, catch_up,"
    " paused, next_run_at, last_run_at, created_at, updated_at"
)
RUN_COLUMNS = "id, schedule_id, tick, trigger, status, event_id, error, missed, created_at"
MINE = "tenant_id = %(tenant_id)s AND id = %(id)s"

# Create a schedule (schedules_pkey).
INSERT = f"""
INSERT INTO schedules (id, tenant_id, name, cron, timezone, event_type, source, payload,
                       channels, catch_up, paused, next_run_at)
VALUES (%(id)s, %(tenant_id)s, %(name)s, %(cron)s, %(timezone)s, %(event_type)s, %(source)s,
        %(payload)s, %(channels)s, %(catch_up)s, %(paused)s, %(next_run_at)s)
RETURNING {COLUMNS}
"""

# One schedule of a tenant (schedules_pkey).
GET = f"SELECT {COLUMNS} FROM schedules WHERE {MINE}"

# One schedule of a tenant, locked against a concurrent firing or change (schedules_pkey).
GET_FOR_UPDATE = f"SELECT {COLUMNS} FROM schedules WHERE {MINE} FOR UPDATE"

# A page of a tenant's schedules in id order after the cursor (schedules_tenant_idx).
LIST_PAGE = f"""
SELECT {COLUMNS} FROM schedules
WHERE tenant_id = %(tenant_id)s AND id > %(after)s
ORDER BY id
LIMIT %(limit)s
"""

# Write a changed schedule back whole (schedules_pkey).
SAVE = f"""
UPDATE schedules SET name = %(name)s, cron = %(cron)s, timezone = %(timezone)s,
    event_type = %(event_type)s, source = %(source)s, payload = %(payload)s,
    channels = %(channels)s, catch_up = %(catch_up)s, paused = %(paused)s,
    next_run_at = %(next_run_at)s, updated_at = now()
WHERE {MINE}
RETURNING {COLUMNS}
"""

# Delete a schedule and its runs (schedules_pkey; schedule_runs cascade).
DELETE = f"DELETE FROM schedules WHERE {MINE} RETURNING {COLUMNS}"

# A page of one schedule's runs, newest first, before the cursor (schedule_runs_schedule_idx).
RUNS_PAGE = f"""
SELECT {RUN_COLUMNS} FROM schedule_runs
WHERE tenant_id = %(tenant_id)s AND schedule_id = %(schedule_id)s AND id < %(before)s
ORDER BY id DESC
LIMIT %(limit)s
"""

MAX_ID = uuid.UUID(int=(1 << 128) - 1)


def _params(row: ScheduleColumns) -> dict[str, Any]:
    return as_jsonb(msgspec.structs.asdict(row), "payload")


async def insert(conn: AsyncConnection, new: ScheduleColumns) -> Schedule:
    """Create a schedule."""
    row = await fetch_one(conn, INSERT, _params(new), Schedule)
    assert row is not None
    return row


async def get(
    conn: AsyncConnection, tenant_id: uuid.UUID, schedule_id: uuid.UUID, *, lock: bool = False
) -> Schedule | None:
    """One schedule of the tenant (locked until the transaction ends with `lock`)."""
    params = {"tenant_id": tenant_id, "id": schedule_id}
    return await fetch_one(conn, GET_FOR_UPDATE if lock else GET, params, Schedule)


async def list_page(
    conn: AsyncConnection, tenant_id: uuid.UUID, after: uuid.UUID | None, limit: int
) -> list[Schedule]:
    """Up to `limit` schedules of the tenant after `after`, oldest first."""
    params = {"tenant_id": tenant_id, "after": after or uuid.UUID(int=0), "limit": limit}
    return await fetch_all(conn, LIST_PAGE, params, Schedule)


async def save(conn: AsyncConnection, row: ScheduleColumns) -> Schedule | None:
    """Write a changed schedule back."""
    return await fetch_one(conn, SAVE, _params(row), Schedule)


async def delete(
    conn: AsyncConnection, tenant_id: uuid.UUID, schedule_id: uuid.UUID
) -> Schedule | None:
    """Delete a schedule with its history."""
    return await fetch_one(conn, DELETE, {"tenant_id": tenant_id, "id": schedule_id}, Schedule)


async def runs_page(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    schedule_id: uuid.UUID,
    before: uuid.UUID | None,
    limit: int,
) -> list[Run]:
    """Up to `limit` runs of a schedule before `before`, newest first."""
    params = {
        "tenant_id": tenant_id,
        "schedule_id": schedule_id,
        "before": before or MAX_ID,
        "limit": limit,
    }
    return await fetch_all(conn, RUNS_PAGE, params, Run)
