"""SQL of console_sessions: web console sign-ins, each acting with the key it was opened with."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from psycopg import AsyncConnection

from db.query import fetch_one


class NewSession(msgspec.Struct, kw_only=True):
    """The columns of a session being opened."""

    token_hash: bytes
    tenant_id: uuid.UUID
    key_id: uuid.UUID
    csrf_token: str
    expires_at: datetime


class LiveSession(msgspec.Struct):
    """A live session and what its key may do now."""

    tenant_id: uuid.UUID
    key_id: uuid.UUID
    prefix: str
    scopes: list[str]
    rate_limit_tier: str
    key_expires_at: datetime | None
    csrf_token: str
    expires_at: datetime


# Open a session (console_sessions_pkey).
INSERT = """
INSERT INTO console_sessions (token_hash, tenant_id, key_id, csrf_token, expires_at)
VALUES (%(token_hash)s, %(tenant_id)s, %(key_id)s, %(csrf_token)s, %(expires_at)s)
"""

# A session that has not expired, whose key is neither revoked nor expired: a revoked key
# ends its sessions at once (console_sessions_token_hash_idx, api_keys_pkey).
GET_LIVE = """
SELECT s.tenant_id, s.key_id, k.prefix, k.scopes, k.rate_limit_tier,
       k.expires_at AS key_expires_at, s.csrf_token, s.expires_at
FROM console_sessions s JOIN api_keys k ON k.tenant_id = s.tenant_id AND k.id = s.key_id
WHERE s.token_hash = %(token_hash)s AND s.expires_at > now()
  AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
"""

# Sign out (console_sessions_pkey).
DELETE = """
DELETE FROM console_sessions WHERE tenant_id = %(tenant_id)s AND token_hash = %(token_hash)s
"""

# Forget ended sessions (console_sessions_expires_idx).
PURGE = "DELETE FROM console_sessions WHERE expires_at <= now()"


async def insert(conn: AsyncConnection, new: NewSession) -> None:
    """Open a session."""
    await conn.execute(INSERT, msgspec.structs.asdict(new))


async def get_live(conn: AsyncConnection, token_hash: bytes) -> LiveSession | None:
    """The live session with this token hash, if any."""
    return await fetch_one(conn, GET_LIVE, {"token_hash": token_hash}, LiveSession)


async def delete(conn: AsyncConnection, tenant_id: uuid.UUID, token_hash: bytes) -> None:
    """End a session of the tenant."""
    await conn.execute(DELETE, {"tenant_id": tenant_id, "token_hash": token_hash})


async def purge(conn: AsyncConnection) -> None:
    """Forget expired sessions."""
    await conn.execute(PURGE)
