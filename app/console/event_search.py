"""The console's event search: any status, newest first, by source, type, channel, time and
a value in the payload."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from psycopg import AsyncConnection

from app.console.forms import optional
from app.errors import BadRequest
from app.events.schemas import EventView
from app.media import check_storable
from app.pagination import Pagination, decode_cursor, encode_cursor, page_of
from app.views import to_views
from db import event_search, events
from db.ids import first_id_at

PAGE_SIZE = 50
DEFAULT_WINDOW = timedelta(days=7)
FILTERS = ("source", "event_type", "channel")


class EventSearch(msgspec.Struct):
    """What was asked: the filters as typed, and the time window used."""

    source: str = ""
    event_type: str = ""
    channel: str = ""
    since: str = ""
    until: str = ""
    path: str = ""  # in the payload: customer.id
    value: str = ""  # what it equals: 42, "gold", true (JSON; other text is a string)


class EventPage(msgspec.Struct):
    """A page of events, newest first; `read_on` when the page stopped at its scan limit
    before the window ended (the next cursor reads on from there)."""

    events: list[EventView]
    pagination: Pagination
    read_on: bool = False
    scanned: int = 0


def parse_time(value: str | None, name: str) -> datetime | None:
    """A time typed in the form (ISO 8601; without a zone, UTC)."""
    text = optional(value)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadRequest(f"`{name}` is not a time like 2026-11-29T14:00", {"field": name}) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


MAX_PATH_KEYS = 10
MAX_KEY = 100
MAX_VALUE = 500


def payload_match(path: str, value: str) -> dict[str, Any]:
    """The document an event's payload must contain for `path` to equal `value`:
    customer.id = 42 is {"customer": {"id": 42}} (a value that is not JSON is a string)."""
    keys = path.strip().split(".")
    if len(keys) > MAX_PATH_KEYS or any(not k or len(k) > MAX_KEY for k in keys):
        raise BadRequest(
            f"path: keys joined by dots, such as customer.id (at most {MAX_PATH_KEYS})",
            {"field": "path"},
        )
    if len(value) > MAX_VALUE:
        raise BadRequest(f"value: at most {MAX_VALUE} characters", {"field": "value"})
    try:
        wanted: Any = json.loads(value)
    except ValueError:
        wanted = value
    if isinstance(wanted, dict | list) or (isinstance(wanted, float) and not math.isfinite(wanted)):
        wanted = value  # a path equals a plain value; a document is searched as text
    for key in reversed(keys):
        wanted = {key: wanted}
    check_storable(wanted)
    return wanted


async def search(
    conn: AsyncConnection, tenant_id: uuid.UUID, asked: EventSearch, cursor: str | None
) -> EventPage:
    """A page of the tenant's events matching the search."""
    until = parse_time(asked.until, "until") or datetime.now(UTC) + timedelta(minutes=1)
    since = parse_time(asked.since, "since") or until - DEFAULT_WINDOW
    if since >= until:
        raise BadRequest("`since` must be before `until`")
    before = first_id_at(until)
    after_cursor = decode_cursor(cursor)
    if after_cursor is not None:
        before = min(before, after_cursor)
    filters: dict[str, Any] = {
        name: value for name in FILTERS if (value := optional(getattr(asked, name)))
    }
    if optional(asked.path):
        filters["payload"] = payload_match(asked.path, asked.value)
    window = {"before": before, "since": since, "until": until}
    rows = await event_search.search(
        conn, tenant_id, **window, filters=filters, limit=PAGE_SIZE + 1
    )
    page, pagination = page_of(rows, PAGE_SIZE, lambda row: row.id)
    if pagination.next_cursor is None and filters:
        return await _read_on(conn, tenant_id, page, before, since)
    return EventPage(to_views(page, EventView), pagination)


async def _read_on(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    page: list[events.Event],
    before: uuid.UUID,
    since: datetime,
) -> EventPage:
    # A short filtered page: it either exhausted the window or stopped at the scan limit.
    oldest, scanned = await event_search.reach(conn, tenant_id, before=before, since=since)
    views = to_views(page, EventView)
    if oldest is None or scanned < event_search.SCAN_LIMIT:
        return EventPage(views, Pagination(None, PAGE_SIZE))
    return EventPage(views, Pagination(encode_cursor(oldest), PAGE_SIZE), True, scanned)
