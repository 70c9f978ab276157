"""SQL of portal_links: expiring links that open one channel's customer portal."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from psycopg import AsyncConnection

from db.query import fetch_one


class NewLink(msgspec.Struct, kw_only=True):
    """The columns of a link being created."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    channel: str
    allowed_origin: str
    token_hash: bytes
    csrf_token: str
    created_by: uuid.UUID | None
    expires_at: datetime


class Link(msgspec.Struct):
    """A portal link that has not expired."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    channel: str
    allowed_origin: str
    csrf_token: str
    expires_at: datetime


# Create a link (portal_links_pkey, portal_links_token_hash_key).
INSERT = """
INSERT INTO portal_links (id, tenant_id, channel, allowed_origin, token_hash, csrf_token,
                          created_by, expires_at)
VALUES (%(id)s, %(tenant_id)s, %(channel)s, %(allowed_origin)s, %(token_hash)s,
        %(csrf_token)s, %(created_by)s, %(expires_at)s)
"""

# The unexpired link with this token hash (portal_links_token_hash_idx).
GET_LIVE = """
SELECT id, tenant_id, channel, allowed_origin, csrf_token, expires_at FROM portal_links
WHERE token_hash = %(token_hash)s AND expires_at > now()
"""

# Forget expired links (portal_links_expires_idx).
PURGE = "DELETE FROM portal_links WHERE expires_at <= now()"


async def insert(conn: AsyncConnection, new: NewLink) -> None:
    """Store a link."""
    await conn.execute(INSERT, msgspec.structs.asdict(new))


async def get_live(conn: AsyncConnection, token_hash: bytes) -> Link | None:
    """The unexpired link with this token hash, if any."""
    return await fetch_one(conn, GET_LIVE, {"token_hash": token_hash}, Link)


async def purge(conn: AsyncConnection) -> None:
    """Forget expired links."""
    await conn.execute(PURGE)
