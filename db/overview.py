"""SQL of the console's overview: one tenant's traffic over the last hour, its backlog, dead
letters and endpoint states. Counts are capped so a busy tenant's page stays cheap."""

from __future__ import annotations

import uuid

import msgspec
from psycopg import AsyncConnection

from db.query import fetch_all, fetch_one

# Counts stop here: the page says "10,000+" rather than walking every row.
COUNT_CAP = 10_000
# The per-minute chart counts at most this many events (and deliveries) of the hour.
HOUR_CAP = 100_000


class Minute(msgspec.Struct):
    """Events and deliveries created in one minute (bucket 1 is the first minute)."""

    bucket: int
    events: int
    deliveries: int


class QueueBacklog(msgspec.Struct):
    """Due deliveries of the tenant in one queue, and the oldest's wait."""

    queue: str
    due: int
    oldest_due_seconds: float


class EndpointStates(msgspec.Struct):
    """The tenant's live endpoints by state, and its dead letters (capped)."""

    total: int
    failing: int
    circuit_open: int
    disabled: int
    dead_letters: int


# Events and deliveries per minute: %(bounds)s are the first UUIDv7 of each minute, so a
# row's minute is its id's bucket among them. Each reads, index-only, at most the newest
# HOUR_CAP ids of the tenant's id-ordered primary key (events_pkey, deliveries_pkey):
# bounded whatever the tenant's history or traffic.
PER_MINUTE = """
WITH e AS (
    SELECT width_bucket(id, %(bounds)s::uuid[]) AS b, count(*) AS n FROM (
        SELECT id FROM events WHERE tenant_id = %(tenant_id)s AND id >= (%(bounds)s::uuid[])[1]
        ORDER BY id DESC LIMIT %(cap)s) AS newest
    GROUP BY 1
), d AS (
    SELECT width_bucket(id, %(bounds)s::uuid[]) AS b, count(*) AS n FROM (
        SELECT id FROM deliveries
        WHERE tenant_id = %(tenant_id)s AND id >= (%(bounds)s::uuid[])[1]
        ORDER BY id DESC LIMIT %(cap)s) AS newest
    GROUP BY 1
)
SELECT b AS bucket, coalesce(e.n, 0) AS events, coalesce(d.n, 0) AS deliveries
FROM e FULL JOIN d USING (b)
ORDER BY b
"""

# The tenant's due deliveries per queue (deliveries_due_idx: waiting rows by due time).
BACKLOG = """
SELECT queue, count(*) AS due,
       COALESCE(EXTRACT(epoch FROM now() - min(next_attempt_at)), 0)::float8 AS oldest_due_seconds
FROM deliveries
WHERE tenant_id = %(tenant_id)s AND status IN ('pending', 'delivering', 'failed')
  AND next_attempt_at <= now()
GROUP BY queue ORDER BY queue
"""

# Live endpoints by state (endpoints_tenant_idx) and up to COUNT_CAP + 1 dead letters of
# them (deliveries_dead_idx, per endpoint).
ENDPOINT_STATES = """
WITH live AS (
    SELECT id, is_active, consecutive_failures, circuit_open_until FROM endpoints
    WHERE tenant_id = %(tenant_id)s AND deleted_at IS NULL
)
SELECT count(*) AS total,
       count(*) FILTER (WHERE consecutive_failures > 0) AS failing,
       count(*) FILTER (WHERE circuit_open_until > now()) AS circuit_open,
       count(*) FILTER (WHERE NOT is_active) AS disabled,
       (SELECT count(*) FROM (
            SELECT 1 FROM deliveries d JOIN live ON d.endpoint_id = live.id
            WHERE d.tenant_id = %(tenant_id)s AND d.status = 'dead' LIMIT %(cap)s + 1) AS capped) AS dead_letters
FROM live
"""


async def per_minute(
    conn: AsyncConnection, tenant_id: uuid.UUID, bounds: list[uuid.UUID]
) -> list[Minute]:
    """Events and deliveries per minute, `bounds` being the first id of each (minutes without
    any are absent)."""
    params = {"tenant_id": tenant_id, "bounds": bounds, "cap": HOUR_CAP}
    return await fetch_all(conn, PER_MINUTE, params, Minute)


async def backlog(conn: AsyncConnection, tenant_id: uuid.UUID) -> list[QueueBacklog]:
    """Due deliveries and the oldest's wait, per queue that has any."""
    return await fetch_all(conn, BACKLOG, {"tenant_id": tenant_id}, QueueBacklog)


async def endpoint_states(conn: AsyncConnection, tenant_id: uuid.UUID) -> EndpointStates:
    """Live endpoints by state, and dead letters up to COUNT_CAP + 1."""
    params = {"tenant_id": tenant_id, "cap": COUNT_CAP}
    row = await fetch_one(conn, ENDPOINT_STATES, params, EndpointStates)
    assert row is not None
    return row
