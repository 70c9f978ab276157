"""Schedule rules: a cron expression cron would run in a known time zone, a payload its type's
schema accepts, runs by hand, and the history of runs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec
from psycopg import AsyncConnection

from app.audit import record
from app.errors import BadRequest, NotFound, PayloadTooLarge
from app.pagination import decode_cursor, page_of
from app.schedules.schemas import (
    RunList,
    RunView,
    ScheduleIn,
    ScheduleList,
    SchedulePatch,
    ScheduleView,
)
from app.views import to_view, to_views
from core import cron
from core.json_schemas import payload_problem
from db import event_types, schedule_runs, schedules
from db.ids import new_id

SCHEDULE = "schedule"
MAX_PAYLOAD_BYTES = 400 * 1024


async def _checked(conn: AsyncConnection, row: schedules.ScheduleColumns) -> None:
    """BadRequest naming the field when the schedule could never run as given."""
    try:
        cron.check(row.cron, row.timezone)
    except cron.CronError as exc:
        field = "timezone" if "time zone" in str(exc) else "cron"
        raise BadRequest(str(exc), {"field": field}) from exc
    if len(msgspec.json.encode(row.payload)) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(f"payload is larger than {MAX_PAYLOAD_BYTES} bytes")
    event_type = await event_types.get(conn, row.tenant_id, row.event_type)
    if event_type is not None and event_type.schema is not None:
        problem = payload_problem(event_type.schema, row.payload)
        if problem:
            raise BadRequest(f"the {row.event_type} {problem}", {"field": "payload"})


async def _found(
    conn: AsyncConnection, tenant_id: uuid.UUID, schedule_id: uuid.UUID, lock: bool = True
) -> schedules.Schedule:
    row = await schedules.get(conn, tenant_id, schedule_id, lock=lock)
    if row is None:
        raise NotFound("no such schedule")
    return row


async def create(conn: AsyncConnection, tenant_id: uuid.UUID, data: ScheduleIn) -> ScheduleView:
    """Create a schedule; it first runs at the next tick after now."""
    new = schedules.ScheduleColumns(
        id=new_id(),
        tenant_id=tenant_id,
        next_run_at=datetime.now(UTC),
        **msgspec.structs.asdict(data),
    )
    new.channels = list(dict.fromkeys(new.channels))
    await _checked(conn, new)
    new.next_run_at = cron.next_tick(new.cron, new.timezone, datetime.now(UTC))
    view = to_view(await schedules.insert(conn, new), ScheduleView)
    await record(conn, tenant_id, "schedule.create", SCHEDULE, view.id, after=view)
    return view


async def get(conn: AsyncConnection, tenant_id: uuid.UUID, schedule_id: uuid.UUID) -> ScheduleView:
    """One schedule of the tenant, or NotFound."""
    return to_view(await _found(conn, tenant_id, schedule_id, lock=False), ScheduleView)


async def list_page(
    conn: AsyncConnection, tenant_id: uuid.UUID, cursor: str | None, limit: int
) -> ScheduleList:
    """A page of the tenant's schedules, oldest first."""
    rows = await schedules.list_page(conn, tenant_id, decode_cursor(cursor), limit + 1)
    page, pagination = page_of(rows, limit, lambda row: row.id)
    return ScheduleList(to_views(page, ScheduleView), pagination)


async def update(
    conn: AsyncConnection, tenant_id: uuid.UUID, schedule_id: uuid.UUID, data: SchedulePatch
) -> ScheduleView:
    """Change a schedule; a new cron or time zone starts from the next tick after now."""
    before = await _found(conn, tenant_id, schedule_id)
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    fields = msgspec.structs.asdict(before)
    columns = {name: fields[name] for name in schedules.ScheduleColumns.__struct_fields__}
    changed = schedules.ScheduleColumns(**{**columns, **changes})
    changed.channels = list(dict.fromkeys(changed.channels))
    await _checked(conn, changed)
    if "cron" in changes or "timezone" in changes:
        changed.next_run_at = cron.next_tick(changed.cron, changed.timezone, datetime.now(UTC))
    return await _save(conn, before, changed, "schedule.update")


async def set_paused(
    conn: AsyncConnection, tenant_id: uuid.UUID, schedule_id: uuid.UUID, paused: bool
) -> ScheduleView:
    """Pause a schedule, or resume it from its next tick after now (none missed is run)."""
    before = await _found(conn, tenant_id, schedule_id)
    changed = msgspec.structs.replace(before, paused=paused)
    if not paused and before.paused:
        changed.next_run_at = cron.next_tick(before.cron, before.timezone, datetime.now(UTC))
    return await _save(conn, before, changed, "schedule.pause" if paused else "schedule.resume")


async def _save(
    conn: AsyncConnection,
    before: schedules.Schedule,
    changed: schedules.ScheduleColumns,
    action: str,
) -> ScheduleView:
    saved = await schedules.save(conn, changed)
    assert saved is not None  # locked by _found
    old, new = to_view(before, ScheduleView), to_view(saved, ScheduleView)
    await record(conn, before.tenant_id, action, SCHEDULE, before.id, before=old, after=new)
    return new


async def delete(
    conn: AsyncConnection, tenant_id: uuid.UUID, schedule_id: uuid.UUID
) -> ScheduleView:
    """Delete a schedule and its history of runs (the events they produced stay)."""
    row = await schedules.delete(conn, tenant_id, schedule_id)
    if row is None:
        raise NotFound("no such schedule")
    view = to_view(row, ScheduleView)
    await record(conn, tenant_id, "schedule.delete", SCHEDULE, schedule_id, before=view)
    return view


async def run_now(conn: AsyncConnection, tenant_id: uuid.UUID, schedule_id: uuid.UUID) -> RunView:
    """Run a schedule now, paused or not; its next tick stays as it was."""
    row = await _found(conn, tenant_id, schedule_id)
    run = to_view(await schedule_runs.run_now(conn, row, datetime.now(UTC)), RunView)
    await record(conn, tenant_id, "schedule.run", SCHEDULE, schedule_id, after=run)
    return run


async def runs_page(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    schedule_id: uuid.UUID,
    cursor: str | None,
    limit: int,
) -> RunList:
    """A page of a schedule's runs, newest first."""
    await get(conn, tenant_id, schedule_id)
    before = decode_cursor(cursor)
    rows = await schedules.runs_page(conn, tenant_id, schedule_id, before, limit + 1)
    page, pagination = page_of(rows, limit, lambda row: row.id)
    return RunList(to_views(page, RunView), pagination)
