"""SQL for the live event stream: pages in commit order, and the event_streams registry."""

from __future__ import annotations

import uuid
from typing import Any, LiteralString

import msgspec
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from core.queues import STREAM_STALE_SECONDS
from db.events import COLUMNS, Event
from db.ids import created_at_of, is_uuid7
from db.query import fetch_tuples, fetch_value, jsonb_rows


class Position(msgspec.Struct, frozen=True):
    """Where a stream stands: after this event, in (stream_xid, id) order."""

    xid: int
    after: uuid.UUID


class StreamedEvent(msgspec.Struct):
    """A pending event with its commit position; `settled` when no transaction that could
    still commit an event before it is running (only settled ones may be sent)."""

    event: Event
    xid: int
    settled: bool


# Pending events of a tenant after a position, in commit order (events_stream_idx). An event
# is settled below the oldest transaction still running: anything that commits later has a
# larger xid, so a stream that only passes settled events never skips one.
PAGE = f"""
SELECT {COLUMNS}, stream_xid::text::bigint AS xid,
       stream_xid < pg_snapshot_xmin(pg_current_snapshot()) AS settled
FROM events
WHERE tenant_id = %(tenant_id)s AND status = 'pending'
  AND (stream_xid, id) > (%(xid)s::text::xid8, %(after)s)
"""
# The inbox's filters, checked on the rows the stream index yields.
FILTERS: dict[str, LiteralString] = {
    "source": "AND source = %(source)s\n",
    "event_type": "AND event_type = %(event_type)s\n",
    "channel": "AND %(channel)s = ANY (channels)\n",
}
ORDER = "ORDER BY stream_xid, id LIMIT %(limit)s"

# A new stream starts at the oldest running transaction: events committed from then on.
HEAD = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"

# The position of the event a client last saw (events_pkey).
POSITION_OF = """
SELECT stream_xid::text::bigint FROM events
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND created_at = %(created_at)s
"""

# An event that is gone (deleted or expired): resume at the earliest commit among the pending
# events after it (events_inbox_idx); some may come again, none is skipped after it.
POSITION_AFTER = """
SELECT min(stream_xid)::text::bigint FROM events
WHERE tenant_id = %(tenant_id)s AND status = 'pending' AND id > %(id)s
"""

# One open at a time per key (the lock), so concurrent opens never pass the bound.
LOCK_KEY = "SELECT pg_advisory_xact_lock(hashtextextended('event_streams:' || %(key_id)s, 0))"

# Register a stream unless the key already has `max` live ones (event_streams_key_idx).
OPEN = """
INSERT INTO event_streams (id, tenant_id, key_id, filters, client_address)
SELECT %(id)s, %(tenant_id)s, %(key_id)s, %(filters)s, %(client_address)s
WHERE (SELECT count(*) FROM event_streams
       WHERE tenant_id = %(tenant_id)s AND key_id = %(key_id)s
         AND seen_at > now() - make_interval(secs => %(stale)s))
      < %(max)s
RETURNING id
"""

# A stream ended (event_streams_pkey).
CLOSE = "DELETE FROM event_streams WHERE tenant_id = %(tenant_id)s AND id = %(id)s"

# Refresh a process's streams (registering again any whose row was removed meanwhile) and
# name those whose key no longer works (revoked, expired or deleted): they must close
# (event_streams_pkey, api_keys_pkey).
HEARTBEAT = """
WITH r AS (
    SELECT * FROM jsonb_to_recordset(%(streams)s::jsonb) AS r(
        id uuid, tenant_id uuid, key_id uuid, filters jsonb, client_address text)
), refreshed AS (
    INSERT INTO event_streams AS s (id, tenant_id, key_id, filters, client_address)
    SELECT r.id, r.tenant_id, r.key_id, r.filters, r.client_address
    FROM r JOIN api_keys k ON k.tenant_id = r.tenant_id AND k.id = r.key_id
    ON CONFLICT (tenant_id, id) DO UPDATE SET seen_at = now()
)
SELECT r.id FROM r LEFT JOIN api_keys k ON k.tenant_id = r.tenant_id AND k.id = r.key_id
WHERE k.id IS NULL OR k.revoked_at IS NOT NULL OR k.expires_at <= now()
"""

# Rows of processes that died (event_streams has no index on seen_at alone: it stays small).
FORGET_STALE = """
DELETE FROM event_streams WHERE seen_at < now() - make_interval(secs => %(stale)s)
"""


def page_query(filters: dict[str, str]) -> LiteralString:
    """The page statement for this set of filters (built from the constants above only)."""
    query = PAGE
    for name, clause in FILTERS.items():
        if name in filters:
            query += clause
    return query + ORDER


async def page(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    position: Position,
    filters: dict[str, str],
    limit: int,
) -> list[StreamedEvent]:
    """Up to `limit` pending events after `position` in commit order, each marked settled
    or not (the settled ones always come first)."""
    params = {
        "tenant_id": tenant_id,
        "xid": str(position.xid),
        "after": position.after,
        "limit": limit,
        **filters,
    }
    rows = await fetch_tuples(conn, page_query(filters), params)
    return [
        StreamedEvent(Event(*row[:-2]), xid=int(row[-2]), settled=bool(row[-1])) for row in rows
    ]


async def head(conn: AsyncConnection) -> Position:
    """The position of a stream that starts now."""
    return Position(int(await fetch_value(conn, HEAD, {})), uuid.UUID(int=0))


async def position_after(
    conn: AsyncConnection, tenant_id: uuid.UUID, event_id: uuid.UUID
) -> Position | None:
    """The position just after a seen event, None when no pending event follows it."""
    params: dict[str, Any] = {"tenant_id": tenant_id, "id": event_id}
    if is_uuid7(event_id):
        params["created_at"] = created_at_of(event_id)
        xid = await fetch_value(conn, POSITION_OF, params)
        if xid is not None:
            return Position(int(xid), event_id)
    xid = await fetch_value(conn, POSITION_AFTER, params)
    return None if xid is None else Position(int(xid), uuid.UUID(int=0))


async def open_stream(
    conn: AsyncConnection,
    stream_id: uuid.UUID,
    tenant_id: uuid.UUID,
    key_id: uuid.UUID,
    filters: dict[str, str],
    client_address: str | None,
    max_per_key: int,
) -> bool:
    """Register a stream in the caller's transaction; False when the key has its maximum."""
    await conn.execute(LOCK_KEY, {"key_id": str(key_id)})
    params = {
        "id": stream_id,
        "tenant_id": tenant_id,
        "key_id": key_id,
        "filters": Jsonb(filters),
        "client_address": client_address,
        "stale": STREAM_STALE_SECONDS,
        "max": max_per_key,
    }
    return await fetch_value(conn, OPEN, params) is not None


async def close_stream(conn: AsyncConnection, row: OpenStream) -> None:
    """Forget a stream that ended."""
    await conn.execute(CLOSE, {"tenant_id": row.tenant_id, "id": row.id})


class OpenStream(msgspec.Struct, frozen=True):
    """A stream a process serves, as its event_streams row says."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    key_id: uuid.UUID
    filters: dict[str, str]
    client_address: str | None


async def heartbeat(conn: AsyncConnection, streams: list[OpenStream]) -> set[uuid.UUID]:
    """Refresh these streams' rows; returns those whose key no longer works."""
    rows = await fetch_tuples(conn, HEARTBEAT, {"streams": jsonb_rows(streams)})
    return {row[0] for row in rows}


async def forget_stale(conn: AsyncConnection) -> None:
    """Remove the rows of streams whose process stopped refreshing them."""
    await conn.execute(FORGET_STALE, {"stale": STREAM_STALE_SECONDS})
