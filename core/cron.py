"""Cron schedules in a time zone, as Debian's cron runs them (through cronsim): a local time a
daylight-saving change skips fires once at the next valid time, one it repeats fires once
(a job with a wildcard hour runs in both of a repeated hour's copies, as cron does)."""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

MAX_EXPRESSION_LENGTH = 120
# How many past ticks are counted when a schedule catches up; beyond, "at least" this many.
MAX_COUNTED_TICKS = 10_000


class CronError(ValueError):
    """A cron expression or time zone that cannot be used; the message says which."""


@functools.cache
def known_time_zones() -> frozenset[str]:
    """The IANA names a schedule may use: only these are ever opened (never a client's path)."""
    return frozenset(zoneinfo.available_timezones())


def time_zone(name: str) -> ZoneInfo:
    """The zone of an IANA name from the known list, else CronError."""
    if name not in known_time_zones():
        raise CronError(f"`{name[:64]}` is not an IANA time zone name (e.g. Europe/Berlin)")
    return ZoneInfo(name)


def check(expression: str, zone: str) -> None:
    """Refuse an expression cron would not run (five fields: minute hour day month weekday)."""
    time_zone(zone)
    if len(expression) > MAX_EXPRESSION_LENGTH or len(expression.split()) != 5:
        raise CronError("a cron expression has five fields: minute hour day month weekday")
    try:
        next(CronSim(expression, datetime.now(UTC)))
    except (CronSimError, StopIteration) as exc:
        raise CronError(f"not a usable cron expression: {exc}") from exc


def ticks_after(expression: str, zone: str, after: datetime) -> Iterator[datetime]:
    """The schedule's times strictly after `after`, in UTC."""
    local = after.astimezone(time_zone(zone))
    for tick in CronSim(expression, local):
        yield tick.astimezone(UTC)


def next_tick(expression: str, zone: str, after: datetime) -> datetime:
    """The first time strictly after `after`."""
    return next(ticks_after(expression, zone, after))


def latest_tick(expression: str, zone: str, now: datetime) -> datetime:
    """The last time at or before `now`, in UTC."""
    start = (now + timedelta(seconds=1)).astimezone(time_zone(zone))
    for tick in CronSim(expression, start, reverse=True):
        if tick <= now:
            return tick.astimezone(UTC)
    raise CronError("the schedule has no time before now")  # cronsim checked it fires


def due_ticks(expression: str, zone: str, first: datetime, now: datetime) -> tuple[datetime, int]:
    """From the first due tick, the latest at or before `now` and how many came before it
    (counted up to MAX_COUNTED_TICKS)."""
    latest = max(first, latest_tick(expression, zone, now))
    earlier = 0 if latest == first else 1
    for tick in ticks_after(expression, zone, first):
        if tick >= latest or earlier >= MAX_COUNTED_TICKS:
            break
        earlier += 1
    return latest, earlier


def seconds_late(tick: datetime, now: datetime) -> float:
    """How long after its time a tick fires."""
    return max(timedelta(0), now - tick).total_seconds()
