"""SQL of the console's event search: a tenant's events of any status, newest first, within a
time window, by source, type, channel and a value in the payload. Every page reads at most SCAN_LIMIT events of the
window, so a filter that matches rarely costs a bounded page, never a walk of the tenant."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any, LiteralString

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from db.events import COLUMNS, Event
from db.ids import first_id_at
from db.query import fetch_all, fetch_tuples

# Events one page reads at most before it answers (with a cursor to read on from there).
SCAN_LIMIT = 20_000

# The newest %(scan)s events of the window below %(before)s (a backward range of
# events_pkey, partitions pruned by created_at); the filters then pick from those.
SEARCH = f"""
WITH scanned AS (
    SELECT {COLUMNS} FROM events
    WHERE tenant_id = %(tenant_id)s AND id < %(before)s AND id >= %(since_id)s
      AND created_at >= %(since)s AND created_at < %(until)s
    ORDER BY id DESC LIMIT %(scan)s
)
SELECT * FROM scanned WHERE true
"""
FILTERS: dict[str, LiteralString] = {
    "source": "AND source = %(source)s\n",
    "event_type": "AND event_type = %(event_type)s\n",
    "channel": "AND %(channel)s = ANY(channels)\n",
    # A path equals a value, as containment: {"customer": {"id": 42}}.
    "payload": "AND payload @> %(payload)s\n",
}
ORDER = "ORDER BY id DESC LIMIT %(limit)s"

# How far the same range reaches: its oldest id and its size (index-only on
# events_pkey: tenant, ids and created_at, no heap).
REACH = """
WITH scanned AS (
    SELECT id FROM events
    WHERE tenant_id = %(tenant_id)s AND id < %(before)s AND id >= %(since_id)s
    ORDER BY id DESC LIMIT %(scan)s
)
SELECT (SELECT id FROM scanned ORDER BY id LIMIT 1), (SELECT count(*) FROM scanned)
"""


@functools.cache
def _query(names: tuple[str, ...]) -> LiteralString:
    # One text per set of filter names (eight at most), built once.
    query: LiteralString = SEARCH
    for name, condition in FILTERS.items():
        if name in names:
            query += condition
    return query + ORDER


def _params(
    tenant_id: uuid.UUID, before: uuid.UUID, since: datetime, until: datetime
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "before": before,
        "since_id": first_id_at(since),
        "since": since,
        "until": until,
        "scan": SCAN_LIMIT,
    }


async def search(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    before: uuid.UUID,
    since: datetime,
    until: datetime,
    filters: dict[str, Any],
    limit: int,
) -> list[Event]:
    """Up to `limit` of the newest SCAN_LIMIT events in [since, until) below `before` for
    which every filter (source, event_type, channel, payload containment) holds, newest
    first."""
    names = tuple(name for name in FILTERS if name in filters)
    params = _params(tenant_id, before, since, until) | {"limit": limit}
    params.update({name: filters[name] for name in names})
    if "payload" in params:
        params["payload"] = Jsonb(params["payload"])
    return await fetch_all(conn, _query(names), params, Event)


async def reach(
    conn: AsyncConnection, tenant_id: uuid.UUID, *, before: uuid.UUID, since: datetime
) -> tuple[uuid.UUID | None, int]:
    """The oldest id a search page read from `before` down, and how many it read."""
    params = _params(tenant_id, before, since, since)
    ((oldest, count),) = await fetch_tuples(conn, REACH, params)
    return oldest, count
