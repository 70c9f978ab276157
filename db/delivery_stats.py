"""SQL of delivery_stats: the console charts' counts, rolled up from delivery_attempts in
batches by id (each attempt counted once: the progress row moves in the same transaction)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import msgspec
from psycopg import AsyncConnection

from core.delivery_stats import ALL_ENDPOINTS, BUCKETS, bucket_of, succeeded
from db.ids import created_at_of, first_id_at
from db.query import fetch_all, fetch_value, jsonb_rows

MINUTES_KEPT = timedelta(days=2)
HOURS_KEPT = timedelta(days=35)


class Tried(msgspec.Struct):
    """One attempt, as much of it as the statistics need."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    endpoint_id: uuid.UUID
    started_at: datetime
    status_code: int | None
    error: str | None
    latency_ms: int


class Stat(msgspec.Struct):
    """One row of delivery_stats."""

    tenant_id: uuid.UUID
    endpoint_id: uuid.UUID
    period: str
    starts_at: datetime
    succeeded: int
    failed: int
    latency_buckets: list[int]


# Where the roll-up stands, locked until the batch is written (delivery_stats_progress_pkey).
PROGRESS = "SELECT rolled_up_to FROM delivery_stats_progress WHERE id = 1 FOR UPDATE"

# The next attempts after the progress and before `upto`, in id order (delivery_attempts_pkey;
# created_at prunes to the partitions from the progress on).
NEXT_ATTEMPTS = """
SELECT id, tenant_id, endpoint_id, started_at, status_code, error, latency_ms
FROM delivery_attempts
WHERE id > %(after)s AND id < %(upto)s AND created_at >= %(after_time)s
ORDER BY id LIMIT %(limit)s
"""

# Add a batch's counts (delivery_stats_pkey).
ADD = """
INSERT INTO delivery_stats (tenant_id, endpoint_id, period, starts_at, succeeded, failed,
                            latency_buckets)
SELECT r.tenant_id, r.endpoint_id, r.period, r.starts_at, r.succeeded, r.failed,
       r.latency_buckets
FROM jsonb_to_recordset(%(rows)s) AS r(tenant_id uuid, endpoint_id uuid, period text,
     starts_at timestamptz, succeeded integer, failed integer, latency_buckets integer[])
ON CONFLICT (tenant_id, endpoint_id, period, starts_at) DO UPDATE
SET succeeded = delivery_stats.succeeded + EXCLUDED.succeeded,
    failed = delivery_stats.failed + EXCLUDED.failed,
    latency_buckets = ARRAY(SELECT a + b FROM unnest(delivery_stats.latency_buckets,
                                                    EXCLUDED.latency_buckets) AS t(a, b))
"""

# Move the progress past the batch (delivery_stats_progress_pkey).
ADVANCE = "UPDATE delivery_stats_progress SET rolled_up_to = %(to)s WHERE id = 1"

# One endpoint's (or, with ALL_ENDPOINTS, the tenant's) rows of a period from `since`
# (delivery_stats_pkey).
SERIES = """
SELECT tenant_id, endpoint_id, period, starts_at, succeeded, failed, latency_buckets
FROM delivery_stats
WHERE tenant_id = %(tenant_id)s AND endpoint_id = %(endpoint_id)s AND period = %(period)s
  AND starts_at >= %(since)s
ORDER BY starts_at
"""

# Forget minutes after two days and hours after 35 (delivery_stats_expiry_idx).
PURGE = """
DELETE FROM delivery_stats
WHERE (period = 'minute' AND starts_at < now() - %(minutes)s::interval)
   OR (period = 'hour' AND starts_at < now() - %(hours)s::interval)
"""


def _counted(batch: list[Tried]) -> list[Stat]:
    """The batch's counts per tenant, endpoint (and all endpoints), minute and hour."""
    rows: dict[tuple[uuid.UUID, uuid.UUID, str, datetime], Stat] = {}
    for tried in batch:
        ok = succeeded(tried.status_code, tried.error)
        minute = tried.started_at.replace(second=0, microsecond=0)
        for period, start in (("minute", minute), ("hour", minute.replace(minute=0))):
            for endpoint_id in (tried.endpoint_id, ALL_ENDPOINTS):
                key = (tried.tenant_id, endpoint_id, period, start)
                stat = rows.get(key) or Stat(
                    tried.tenant_id, endpoint_id, period, start, 0, 0, [0] * BUCKETS
                )
                rows[key] = stat
                stat.succeeded += ok
                stat.failed += not ok
                stat.latency_buckets[bucket_of(tried.latency_ms)] += 1
    return list(rows.values())


async def roll_up_batch(conn: AsyncConnection, settled_before: datetime, limit: int) -> int:
    """Count up to `limit` attempts started before `settled_before` (later ones may still be
    committing), in the caller's transaction; how many were counted."""
    after: uuid.UUID = await fetch_value(conn, PROGRESS)
    params = {
        "after": after,
        "upto": first_id_at(settled_before),
        "after_time": created_at_of(after),
        "limit": limit,
    }
    batch = await fetch_all(conn, NEXT_ATTEMPTS, params, Tried)
    if not batch:
        return 0
    await conn.execute(ADD, {"rows": jsonb_rows(_counted(batch))})
    await conn.execute(ADVANCE, {"to": batch[-1].id})
    return len(batch)


async def series(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    period: str,
    since: datetime,
) -> list[Stat]:
    """The stored rows of one endpoint (or all) and period from `since`, oldest first."""
    params = {"tenant_id": tenant_id, "endpoint_id": endpoint_id, "period": period, "since": since}
    return await fetch_all(conn, SERIES, params, Stat)


async def purge(conn: AsyncConnection) -> None:
    """Forget rows past their keeping."""
    await conn.execute(PURGE, {"minutes": MINUTES_KEPT, "hours": HOURS_KEPT})
