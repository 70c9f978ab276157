"""SQL for the api_keys table."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import msgspec
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from db.query import fetch_all, fetch_one, fetch_tuples

# Revocations and expiry changes are announced on this channel (payload: the key prefix)
# so every API process drops its cached verification at once.
INVALIDATION_CHANNEL = "eventgate_api_keys"


class ApiKey(msgspec.Struct):
    """One api_keys row, without the secret hash."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    rate_limit_tier: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime
    created_by: uuid.UUID | None
    metadata: dict[str, Any]


class NewKey(msgspec.Struct, kw_only=True):
    """The columns of a key being created."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    prefix: str
    secret_hash: str
    scopes: list[str]
    rate_limit_tier: str
    expires_at: datetime | None
    created_by: uuid.UUID | None
    metadata: dict[str, Any]


class LockedKey(ApiKey):
    """A key locked for rotation, with the key that already replaced it, if any."""

    replaced_by: uuid.UUID | None


class StoredKey(ApiKey):
    """What verifying a presented key needs: the row and its argon2 hash."""

    secret_hash: str


COLUMNS = (
    "id, tenant_id, name, prefix, scopes, rate_limit_tier, expires_at, revoked_at,"
    " last_used_at, created_at, created_by, metadata"
)

# Store a new key (api_keys_pkey, api_keys_prefix_key).
INSERT = f"""
INSERT INTO api_keys (id, tenant_id, name, prefix, secret_hash, scopes, rate_limit_tier,
                      expires_at, created_by, metadata)
VALUES (%(id)s, %(tenant_id)s, %(name)s, %(prefix)s, %(secret_hash)s, %(scopes)s,
        %(rate_limit_tier)s, %(expires_at)s, %(created_by)s, %(metadata)s)
RETURNING {COLUMNS}
"""

# The key with this prefix and its hash, for verification (api_keys_prefix_idx).
GET_FOR_VERIFY = f"SELECT {COLUMNS}, secret_hash FROM api_keys WHERE prefix = %(prefix)s"

# One key of a tenant (api_keys_pkey).
GET = f"SELECT {COLUMNS} FROM api_keys WHERE tenant_id = %(tenant_id)s AND id = %(id)s"

# A page of a tenant's keys in id order after the cursor (api_keys_tenant_id_idx).
LIST_PAGE = f"""
SELECT {COLUMNS} FROM api_keys
WHERE tenant_id = %(tenant_id)s AND (%(after)s::uuid IS NULL OR id > %(after)s)
  AND (%(revoked)s OR revoked_at IS NULL)
ORDER BY id
LIMIT %(limit)s
"""

# Rename a key or change its tier, and tell every process to read it again (api_keys_pkey).
UPDATE = f"""
WITH changed AS (
    UPDATE api_keys SET name = coalesce(%(name)s, name),
        rate_limit_tier = coalesce(%(rate_limit_tier)s, rate_limit_tier)
    WHERE tenant_id = %(tenant_id)s AND id = %(id)s
    RETURNING {COLUMNS}
)
SELECT {COLUMNS} FROM changed, pg_notify('{INVALIDATION_CHANNEL}', changed.prefix)
"""

# Lock one key of a tenant for a rotation: concurrent rotations and revocations of it wait
# and then see what the first one did (api_keys_pkey).
LOCK_FOR_ROTATION = f"""
SELECT {COLUMNS}, replaced_by FROM api_keys
WHERE tenant_id = %(tenant_id)s AND id = %(id)s
FOR UPDATE
"""

# Lock a key and every key rotated from it, in id order (replacements are newer), and return
# their ids. Each run reads the chain afresh: a rotation that held a lock commits before
# this one gets it, so running it until the answer repeats takes in its replacement too
# (api_keys_pkey along the chain).
LOCK_CHAIN = """
WITH RECURSIVE chain AS (
    SELECT id, replaced_by FROM api_keys WHERE tenant_id = %(tenant_id)s AND id = %(id)s
    UNION
    SELECT k.id, k.replaced_by FROM api_keys k
    JOIN chain c ON k.tenant_id = %(tenant_id)s AND k.id = c.replaced_by
)
SELECT id FROM api_keys WHERE tenant_id = %(tenant_id)s AND id IN (SELECT id FROM chain)
ORDER BY id FOR UPDATE
"""

# Revoke the locked keys and tell every process; returns them all, the one asked for first
# (api_keys_pkey).
REVOKE = f"""
WITH revoked AS (
    -- RETURNING runs for every revoked row, so each one's prefix is announced.
    UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
    WHERE tenant_id = %(tenant_id)s AND id = ANY(%(ids)s)
    RETURNING {COLUMNS}, pg_notify('{INVALIDATION_CHANNEL}', prefix) AS told
)
SELECT {COLUMNS} FROM revoked ORDER BY id <> %(id)s
"""

# Mark a key rotated: it expires after the grace (never later than it already would) and
# names its replacement; tell every process (api_keys_pkey).
MARK_ROTATED = f"""
WITH rotated AS (
    UPDATE api_keys
    SET expires_at = least(coalesce(expires_at, 'infinity'), now() + %(grace)s),
        replaced_by = %(replacement)s
    WHERE tenant_id = %(tenant_id)s AND id = %(id)s
    RETURNING {COLUMNS}
)
SELECT {COLUMNS} FROM rotated, pg_notify('{INVALIDATION_CHANNEL}', rotated.prefix)
"""

# Record when keys were last used, batched from memory (api_keys_pkey).
TOUCH_LAST_USED = """
UPDATE api_keys AS k SET last_used_at = used.at
FROM unnest(%(tenant_ids)s::uuid[], %(ids)s::uuid[], %(ats)s::timestamptz[])
    AS used(tenant_id, id, at)
WHERE k.tenant_id = used.tenant_id AND k.id = used.id AND (k.last_used_at IS NULL OR k.last_used_at < used.at)
"""


async def insert(conn: AsyncConnection, new_key: NewKey) -> ApiKey:
    """Insert a key and return it."""
    params = msgspec.structs.asdict(new_key)
    params["metadata"] = Jsonb(new_key.metadata)
    row = await fetch_one(conn, INSERT, params, ApiKey)
    assert row is not None
    return row


async def get_for_verify(conn: AsyncConnection, prefix: str) -> StoredKey | None:
    """The key with this prefix and its secret hash."""
    return await fetch_one(conn, GET_FOR_VERIFY, {"prefix": prefix}, StoredKey)


async def get(conn: AsyncConnection, tenant_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey | None:
    """One key of the tenant."""
    return await fetch_one(conn, GET, {"tenant_id": tenant_id, "id": key_id}, ApiKey)


async def list_page(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    after: uuid.UUID | None,
    limit: int,
    *,
    revoked: bool = True,
) -> list[ApiKey]:
    """Up to `limit` keys of the tenant with ids after `after` (without revoked ones, unless
    `revoked`)."""
    params = {"tenant_id": tenant_id, "after": after, "limit": limit, "revoked": revoked}
    return await fetch_all(conn, LIST_PAGE, params, ApiKey)


async def revoke(conn: AsyncConnection, tenant_id: uuid.UUID, key_id: uuid.UUID) -> list[ApiKey]:
    """Revoke the key and the keys rotated from it (idempotent) and announce them; the key
    asked for comes first, and the list is empty when the tenant has no such key. Call
    inside a transaction: the chain stays locked until it ends, so no rotation extends it."""
    params: dict[str, Any] = {"tenant_id": tenant_id, "id": key_id}
    locked: list[tuple[Any, ...]] = []
    while True:
        again = await fetch_tuples(conn, LOCK_CHAIN, params)
        if again == locked:
            break
        locked = again  # a rotation committed while this waited: its replacement joins
    if not locked:
        return []
    return await fetch_all(conn, REVOKE, {**params, "ids": [row[0] for row in locked]}, ApiKey)


async def update(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    key_id: uuid.UUID,
    *,
    name: str | None,
    rate_limit_tier: str | None,
) -> ApiKey | None:
    """Rename a key or change its tier (None leaves a field as it is)."""
    params = {
        "tenant_id": tenant_id,
        "id": key_id,
        "name": name,
        "rate_limit_tier": rate_limit_tier,
    }
    return await fetch_one(conn, UPDATE, params, ApiKey)


async def lock_for_rotation(
    conn: AsyncConnection, tenant_id: uuid.UUID, key_id: uuid.UUID
) -> LockedKey | None:
    """Lock one key of the tenant until the transaction ends (call inside a transaction)."""
    return await fetch_one(
        conn, LOCK_FOR_ROTATION, {"tenant_id": tenant_id, "id": key_id}, LockedKey
    )


async def mark_rotated(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    key_id: uuid.UUID,
    replacement: uuid.UUID,
    grace: timedelta,
) -> ApiKey | None:
    """Make the key expire `grace` from now (or earlier if it already would), name its
    replacement, and announce it."""
    params = {"tenant_id": tenant_id, "id": key_id, "grace": grace, "replacement": replacement}
    return await fetch_one(conn, MARK_ROTATED, params, ApiKey)


async def touch_last_used(
    conn: AsyncConnection, used: dict[tuple[uuid.UUID, uuid.UUID], datetime]
) -> None:
    """Write the remembered last-use times of (tenant_id, key_id) in one statement."""
    if used:
        params = {
            "tenant_ids": [tenant_id for tenant_id, _ in used],
            "ids": [key_id for _, key_id in used],
            "ats": list(used.values()),
        }
        await conn.execute(TOUCH_LAST_USED, params)


# Usable keys that expire within 7 days, of tenants with an operational endpoint to tell
# (api_keys_expiring_idx, endpoints_operational_idx).
EXPIRING_SOON = f"""
SELECT {COLUMNS} FROM api_keys k
WHERE revoked_at IS NULL AND expires_at IS NOT NULL
  AND expires_at > now() AND expires_at <= now() + interval '7 days'
  AND EXISTS (SELECT 1 FROM endpoints e
              WHERE e.tenant_id = k.tenant_id AND e.operational AND e.deleted_at IS NULL)
ORDER BY expires_at
"""


async def expiring_soon(conn: AsyncConnection) -> list[ApiKey]:
    """Usable keys that expire within 7 days, in tenants that have operational endpoints."""
    return await fetch_all(conn, EXPIRING_SOON, None, ApiKey)
