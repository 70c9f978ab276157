"""SQL of console_sessions: web console sign-ins, each acting as the user or with the key it
was opened by."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from psycopg import AsyncConnection

from db.query import fetch_all, fetch_one, fetch_value


class NewSession(msgspec.Struct, kw_only=True):
    """The columns of a session being opened."""

    token_hash: bytes
    tenant_id: uuid.UUID
    id: uuid.UUID
    key_id: uuid.UUID | None
    user_id: uuid.UUID | None
    csrf_token: str
    expires_at: datetime
    client_ip: str | None
    user_agent: str | None


class LiveSession(msgspec.Struct):
    """A live session and what its user or key may do now."""

    tenant_id: uuid.UUID
    id: uuid.UUID
    key_id: uuid.UUID | None
    prefix: str | None
    user_id: uuid.UUID | None
    email: str | None
    role: str | None
    scopes: list[str] | None
    rate_limit_tier: str | None
    key_expires_at: datetime | None
    csrf_token: str
    expires_at: datetime


class SessionRow(msgspec.Struct):
    """One of a user's sessions, as the sessions page lists it."""

    id: uuid.UUID
    created_at: datetime
    expires_at: datetime
    client_ip: str | None
    user_agent: str | None


# Open a session (console_sessions_pkey).
INSERT = """
INSERT INTO console_sessions (token_hash, tenant_id, id, key_id, user_id, csrf_token,
                              expires_at, client_ip, user_agent)
VALUES (%(token_hash)s, %(tenant_id)s, %(id)s, %(key_id)s, %(user_id)s, %(csrf_token)s,
        %(expires_at)s, %(client_ip)s, %(user_agent)s)
"""

# A session that has not expired, whose user is enabled or whose key is neither revoked nor
# expired: disabling the user or revoking the key ends its sessions at once
# (console_sessions_token_hash_idx, api_keys_pkey, console_users_pkey).
GET_LIVE = """
SELECT s.tenant_id, s.id, s.key_id, k.prefix, s.user_id, u.email, u.role, k.scopes,
       k.rate_limit_tier, k.expires_at AS key_expires_at, s.csrf_token, s.expires_at
FROM console_sessions s
LEFT JOIN api_keys k ON k.tenant_id = s.tenant_id AND k.id = s.key_id
LEFT JOIN console_users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id
WHERE s.token_hash = %(token_hash)s AND s.expires_at > now()
  AND ((k.id IS NOT NULL AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now()))
       OR (u.id IS NOT NULL AND u.disabled_at IS NULL))
"""

# A user's live sessions, newest first (console_sessions_user_idx).
OF_USER = """
SELECT id, created_at, expires_at, client_ip, user_agent FROM console_sessions
WHERE tenant_id = %(tenant_id)s AND user_id = %(user_id)s AND expires_at > now()
ORDER BY created_at DESC LIMIT 100
"""

# End one of a user's sessions (console_sessions_user_idx).
REVOKE = """
DELETE FROM console_sessions
WHERE tenant_id = %(tenant_id)s AND user_id = %(user_id)s AND id = %(id)s
RETURNING id
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


async def of_user(
    conn: AsyncConnection, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> list[SessionRow]:
    """A user's live sessions."""
    params = {"tenant_id": tenant_id, "user_id": user_id}
    return await fetch_all(conn, OF_USER, params, SessionRow)


async def revoke(
    conn: AsyncConnection, tenant_id: uuid.UUID, user_id: uuid.UUID, session_id: uuid.UUID
) -> bool:
    """End one of the user's sessions; False when it is not theirs (or already ended)."""
    params = {"tenant_id": tenant_id, "user_id": user_id, "id": session_id}
    return await fetch_value(conn, REVOKE, params) is not None


async def delete(conn: AsyncConnection, tenant_id: uuid.UUID, token_hash: bytes) -> None:
    """End a session of the tenant."""
    await conn.execute(DELETE, {"tenant_id": tenant_id, "token_hash": token_hash})


async def purge(conn: AsyncConnection) -> None:
    """Forget expired sessions."""
    await conn.execute(PURGE)
