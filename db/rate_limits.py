"""SQL for rate limits: the operator's tiers, per-key route overrides, and taking a request
from the shared counters."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import msgspec
from psycopg import AsyncConnection

from db.query import fetch_all, fetch_one, fetch_value, jsonb_rows


class Tier(msgspec.Struct):
    """One rate_limit_tiers row; None means no limit for that window."""

    name: str
    per_minute: int | None
    per_hour: int | None
    per_day: int | None
    burst: int | None


class Override(msgspec.Struct):
    """One key's limits on one route (`POST /v1/events`)."""

    route: str
    per_minute: int | None = None
    per_hour: int | None = None
    per_day: int | None = None


class Window(msgspec.Struct, frozen=True):
    """One limit to count a request against: a bucket, a window length and its limit, and the
    policy name the RateLimit headers give it."""

    name: str
    bucket: str
    seconds: int
    limit: int


class Taken(msgspec.Struct):
    """Whether a request was admitted, and the tightest of its windows (1-based position)."""

    allowed: bool
    tightest: int | None
    remaining: int | None
    reset_seconds: int | None
    first_end_seconds: float | None = None


# Every tier, by name (rate_limit_tiers_pkey).
LIST_TIERS = "SELECT name, per_minute, per_hour, per_day, burst FROM rate_limit_tiers ORDER BY name"

# Create or change a tier (rate_limit_tiers_pkey).
SET_TIER = """
INSERT INTO rate_limit_tiers (name, per_minute, per_hour, per_day, burst)
VALUES (%(name)s, %(per_minute)s, %(per_hour)s, %(per_day)s, %(burst)s)
ON CONFLICT (name) DO UPDATE SET per_minute = EXCLUDED.per_minute,
    per_hour = EXCLUDED.per_hour, per_day = EXCLUDED.per_day, burst = EXCLUDED.burst,
    updated_at = now()
RETURNING name, per_minute, per_hour, per_day, burst
"""

# One key's overrides, by route (rate_limit_overrides_pkey).
LIST_OVERRIDES = """
SELECT route, per_minute, per_hour, per_day FROM rate_limit_overrides
WHERE tenant_id = %(tenant_id)s AND api_key_id = %(key_id)s ORDER BY route
"""

# A change of a key's overrides is announced here (payload: the key id), delivered at COMMIT,
# so no process re-reads the old ones after forgetting them.
OVERRIDES_CHANNEL = "eventgate_rate_limit_overrides"

# Tell every API process that a key's overrides changed (on commit).
ANNOUNCE_OVERRIDES = f"SELECT pg_notify('{OVERRIDES_CHANNEL}', %(key_id)s::text)"

# Replace one key's overrides with the given set (rate_limit_overrides_pkey).
REPLACE_OVERRIDES = """
WITH gone AS (
    DELETE FROM rate_limit_overrides WHERE tenant_id = %(tenant_id)s AND api_key_id = %(key_id)s
)
INSERT INTO rate_limit_overrides (tenant_id, api_key_id, route, per_minute, per_hour, per_day)
SELECT %(tenant_id)s, %(key_id)s, route, per_minute, per_hour, per_day
FROM jsonb_to_recordset(%(overrides)s::jsonb)
    AS o(route text, per_minute integer, per_hour integer, per_day integer)
"""

# Count `wanted` requests in every window unless one would go over (rate_limit_counters_pkey).
TAKE = """
SELECT allowed, tightest, remaining, reset_seconds, first_end_seconds
FROM eventgate_rate_limit_take(%(buckets)s, %(windows)s, %(limits)s, %(wanted)s)
"""

# Forget counters whose window ended (a scan of a small UNLOGGED table).
PURGE_COUNTERS = """
DELETE FROM rate_limit_counters
WHERE window_start + make_interval(secs => window_seconds) < now()
"""

# How many requests were refused today (rate_limit_refusals_pkey).
REFUSED_TODAY = """
SELECT coalesce(sum(refused), 0) FROM rate_limit_refusals
WHERE day = (now() AT TIME ZONE 'UTC')::date
"""


async def list_tiers(conn: AsyncConnection) -> list[Tier]:
    """Every tier, by name."""
    return await fetch_all(conn, LIST_TIERS, None, Tier)


async def set_tier(conn: AsyncConnection, tier: Tier) -> Tier:
    """Create or change a tier."""
    row = await fetch_one(conn, SET_TIER, msgspec.structs.asdict(tier), Tier)
    assert row is not None
    return row


async def list_overrides(
    conn: AsyncConnection, tenant_id: uuid.UUID, key_id: uuid.UUID
) -> list[Override]:
    """One key's route overrides."""
    params = {"tenant_id": tenant_id, "key_id": key_id}
    return await fetch_all(conn, LIST_OVERRIDES, params, Override)


async def replace_overrides(
    conn: AsyncConnection, tenant_id: uuid.UUID, key_id: uuid.UUID, overrides: Sequence[Override]
) -> None:
    """Make these the key's overrides (an empty list removes them all), and tell every API
    process once the transaction commits."""
    params = {"tenant_id": tenant_id, "key_id": key_id, "overrides": jsonb_rows(overrides)}
    await conn.execute(REPLACE_OVERRIDES, params)
    await conn.execute(ANNOUNCE_OVERRIDES, {"key_id": key_id})


async def take(conn: AsyncConnection, windows: Sequence[Window], wanted: int = 1) -> Taken:
    """Count `wanted` requests against every window, or none if one has no room for them."""
    params = {
        "buckets": [w.bucket for w in windows],
        "windows": [w.seconds for w in windows],
        "limits": [w.limit for w in windows],
        "wanted": wanted,
    }
    row = await fetch_one(conn, TAKE, params, Taken)
    assert row is not None
    return row


async def purge_counters(conn: AsyncConnection) -> None:
    """Forget the counters of windows that have ended."""
    await conn.execute(PURGE_COUNTERS)


async def refused_today(conn: AsyncConnection) -> int:
    """How many requests were answered 429 today, in every process."""
    return int(await fetch_value(conn, REFUSED_TODAY))
