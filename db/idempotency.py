"""SQL for idempotency_keys: claim a key for one request at a time, read and store answers."""

from __future__ import annotations

import uuid
from datetime import timedelta

import msgspec
from psycopg import AsyncConnection

from db.query import fetch_one, fetch_value


class StoredAnswer(msgspec.Struct):
    """The first answer given under a key, and what it answered."""

    fingerprint: bytes
    status_code: int
    content_type: str
    body: bytes


# Hold the key for this transaction, or learn at once that another request holds it
# (an advisory lock on a hash of tenant and key; no index).
CLAIM = """
SELECT pg_try_advisory_xact_lock(hashtextextended(%(tenant_id)s::text || ':' || %(key)s, 0))
"""

# The answer stored under a key, while it has not expired (idempotency_keys_pkey).
GET = """
SELECT fingerprint, status_code, content_type, body FROM idempotency_keys
WHERE tenant_id = %(tenant_id)s AND key = %(key)s AND expires_at > now()
"""

# Store the answer under a key, replacing an expired one (idempotency_keys_pkey).
STORE = """
INSERT INTO idempotency_keys (tenant_id, key, fingerprint, status_code, content_type, body,
                              expires_at)
VALUES (%(tenant_id)s, %(key)s, %(fingerprint)s, %(status_code)s, %(content_type)s, %(body)s,
        now() + %(ttl)s)
ON CONFLICT (tenant_id, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,
    status_code = EXCLUDED.status_code, content_type = EXCLUDED.content_type,
    body = EXCLUDED.body, created_at = now(), expires_at = EXCLUDED.expires_at
"""

# Forget expired answers (idempotency_keys_expires_idx).
PURGE = "DELETE FROM idempotency_keys WHERE expires_at <= now()"


async def claim(conn: AsyncConnection, tenant_id: uuid.UUID, key: str) -> bool:
    """True when this transaction now holds the key; False while another request does."""
    return bool(await fetch_value(conn, CLAIM, {"tenant_id": tenant_id, "key": key}))


async def get(conn: AsyncConnection, tenant_id: uuid.UUID, key: str) -> StoredAnswer | None:
    """The unexpired answer stored under the key."""
    return await fetch_one(conn, GET, {"tenant_id": tenant_id, "key": key}, StoredAnswer)


async def store(
    conn: AsyncConnection, tenant_id: uuid.UUID, key: str, answer: StoredAnswer, ttl: timedelta
) -> None:
    """Keep the answer under the key for `ttl` (inside the transaction that made it)."""
    params = {"tenant_id": tenant_id, "key": key, "ttl": ttl, **msgspec.structs.asdict(answer)}
    await conn.execute(STORE, params)


async def purge(conn: AsyncConnection) -> None:
    """Forget the answers whose time is up."""
    await conn.execute(PURGE)
