"""Request and response bodies of the /v1/schedules routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec

from app.events.schemas import Channels, Name
from app.pagination import Pagination

ScheduleName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
CronExpression = Annotated[
    str,
    msgspec.Meta(
        min_length=9,
        max_length=120,
        description="Five fields: minute hour day-of-month month day-of-week (as cron)",
        examples=["0 9 * * 1-5"],
    ),
]
TimeZone = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, description="An IANA name", examples=["UTC"])
]


class ScheduleIn(msgspec.Struct, forbid_unknown_fields=True):
    """A recurring event: at each tick of `cron` in `timezone`, this event is ingested."""

    name: ScheduleName
    cron: CronExpression
    event_type: Name
    payload: dict[str, Any]
    source: Name = "schedule"
    timezone: TimeZone = "UTC"
    channels: Channels = msgspec.field(default_factory=list)
    # Ticks missed while no worker ran: fired once on recovery (true), or skipped (false).
    catch_up: bool = True
    paused: bool = False


class SchedulePatch(msgspec.Struct, forbid_unknown_fields=True):
    """Changes to a schedule; a changed cron or time zone starts from the next tick."""

    name: ScheduleName | msgspec.UnsetType = msgspec.UNSET
    cron: CronExpression | msgspec.UnsetType = msgspec.UNSET
    timezone: TimeZone | msgspec.UnsetType = msgspec.UNSET
    event_type: Name | msgspec.UnsetType = msgspec.UNSET
    source: Name | msgspec.UnsetType = msgspec.UNSET
    payload: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    channels: Channels | msgspec.UnsetType = msgspec.UNSET
    catch_up: bool | msgspec.UnsetType = msgspec.UNSET


class ScheduleView(msgspec.Struct):
    """A schedule and when it runs next."""

    id: uuid.UUID
    name: str
    cron: str
    timezone: str
    event_type: str
    source: str
    payload: dict[str, Any]
    channels: list[str]
    catch_up: bool
    paused: bool
    # The next tick (UTC); a paused schedule keeps it and resumes from the next one.
    next_run_at: datetime
    last_run_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ScheduleList(msgspec.Struct):
    """A page of schedules, oldest first."""

    schedules: list[ScheduleView]
    pagination: Pagination


class RunView(msgspec.Struct):
    """One run of a schedule: the event it produced, or why it did not."""

    id: uuid.UUID
    schedule_id: uuid.UUID
    # The cron time this run is for (a manual run's: when it was asked for).
    tick: datetime
    trigger: str
    # succeeded, failed (error says why) or skipped (missed with catch_up off).
    status: str
    event_id: uuid.UUID | None
    error: str | None
    # Earlier ticks this run stands for: caught up at once, or skipped.
    missed: int
    created_at: datetime


class RunList(msgspec.Struct):
    """A page of runs, newest first."""

    runs: list[RunView]
    pagination: Pagination
