"""SQL for sources (inbound webhooks), their receipts (redelivery de-duplication) and their
rejections (refused trigger requests)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import msgspec
from psycopg import AsyncConnection, errors

from core.encryption import Where, keyring
from db.query import as_jsonb, fetch_all, fetch_one, fetch_value


class SourceColumns(msgspec.Struct, kw_only=True):
    """The columns a source is given (a stored row and a new one alike)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    token: str
    event_type: str | None
    event_type_header: str | None
    event_type_pointer: str | None
    event_type_prefix: str
    keep_headers: list[str]
    verification: dict[str, Any]


class Source(SourceColumns, kw_only=True):
    """One sources row without its secret."""

    created_at: datetime
    updated_at: datetime


class SourceWithSecret(Source, kw_only=True):
    """A source as a trigger request needs it: with the secret it verifies against (stored
    sealed, opened in memory when asked)."""

    secret_encrypted: bytes | None
    transformation: str | None = None  # run on each request before its event is stored

    @property
    def secret(self) -> str | None:
        """The verification secret, or None for a scheme without one."""
        sealed = self.secret_encrypted
        return None if sealed is None else keyring().open(sealed, _where_secret(self.id))


def _where_secret(source_id: uuid.UUID) -> Where:
    return Where("sources", "secret", source_id)


def _sealed(source_id: uuid.UUID, secret: str | None) -> bytes | None:
    return None if secret is None else keyring().seal(secret, _where_secret(source_id))


class NewSource(SourceColumns, kw_only=True):
    """The columns of a source being created."""

    secret: str | None


class Rejection(msgspec.Struct):
    """One refused trigger request (no secret, no body)."""

    id: uuid.UUID
    status_code: int
    reason: str
    client_ip: str
    header_names: list[str]
    body_size: int
    created_at: datetime


COLUMNS = (
    "id, tenant_id, name, token, event_type, event_type_header, event_type_pointer,"
    " event_type_prefix, keep_headers, verification, created_at, updated_at"
)
MINE = "tenant_id = %(tenant_id)s AND id = %(id)s"

# Create a source (sources_pkey, sources_tenant_id_name_key, sources_token_key).
INSERT = f"""
INSERT INTO sources (id, tenant_id, name, token, event_type, event_type_header,
                     event_type_pointer, event_type_prefix, keep_headers, verification,
                     secret_encrypted)
VALUES (%(id)s, %(tenant_id)s, %(name)s, %(token)s, %(event_type)s, %(event_type_header)s,
        %(event_type_pointer)s, %(event_type_prefix)s, %(keep_headers)s, %(verification)s,
        %(secret)s)
RETURNING {COLUMNS}
"""

# One source of a tenant (sources_pkey).
GET = f"SELECT {COLUMNS} FROM sources WHERE {MINE}"

# The source a trigger token belongs to, with its secret (sources_token_idx).
BY_TOKEN = f"""
SELECT {COLUMNS}, secret_encrypted, transformation FROM sources WHERE token = %(token)s
"""

# A page of a tenant's sources in id order after the cursor (sources_tenant_idx).
LIST_PAGE = f"""
SELECT {COLUMNS} FROM sources
WHERE tenant_id = %(tenant_id)s AND id > %(after)s
ORDER BY id
LIMIT %(limit)s
"""

# PATCH: only the fields named in `given` change; the three event-type rules are replaced
# together (sources_pkey).
UPDATE = f"""
UPDATE sources SET
    name = CASE WHEN 'name' = ANY(%(given)s) THEN %(name)s ELSE name END,
    event_type = CASE WHEN 'rule' = ANY(%(given)s) THEN %(event_type)s ELSE event_type END,
    event_type_header = CASE WHEN 'rule' = ANY(%(given)s) THEN %(event_type_header)s
                             ELSE event_type_header END,
    event_type_pointer = CASE WHEN 'rule' = ANY(%(given)s) THEN %(event_type_pointer)s
                              ELSE event_type_pointer END,
    event_type_prefix = CASE WHEN 'event_type_prefix' = ANY(%(given)s)
                             THEN %(event_type_prefix)s ELSE event_type_prefix END,
    keep_headers = CASE WHEN 'keep_headers' = ANY(%(given)s) THEN %(keep_headers)s
                        ELSE keep_headers END,
    verification = CASE WHEN 'verification' = ANY(%(given)s) THEN %(verification)s
                        ELSE verification END,
    secret_encrypted = CASE WHEN 'secret' = ANY(%(given)s) THEN %(secret)s
                            ELSE secret_encrypted END,
    updated_at = now()
WHERE {MINE}
RETURNING {COLUMNS}
"""

# Delete a source with its receipts and rejections (sources_pkey; cascades).
DELETE = f"DELETE FROM sources WHERE {MINE} RETURNING {COLUMNS}"

# One source of a tenant with its write-only secret (sources_pkey).
GET_WITH_SECRET = f"SELECT {COLUMNS}, secret_encrypted FROM sources WHERE {MINE}"

# A new trigger token; the old one stops working at once (sources_pkey).
ROTATE_TOKEN = f"""
UPDATE sources SET token = %(token)s, updated_at = now() WHERE {MINE} RETURNING {COLUMNS}
"""

# Record that a redelivery key now names this event, unless a live receipt already holds it
# (an expired one is taken over); returns the event id when this request got it
# (source_receipts_pkey).
CLAIM_RECEIPT = """
INSERT INTO source_receipts (tenant_id, source_id, dedup_key, event_id, expires_at)
VALUES (%(tenant_id)s, %(source_id)s, %(dedup_key)s, %(event_id)s, now() + %(ttl)s)
ON CONFLICT (tenant_id, source_id, dedup_key) DO UPDATE
    SET event_id = EXCLUDED.event_id, created_at = now(), expires_at = EXCLUDED.expires_at
    WHERE source_receipts.expires_at <= now()
RETURNING event_id
"""

# The event a live receipt names (source_receipts_pkey).
RECEIPT = """
SELECT event_id FROM source_receipts
WHERE tenant_id = %(tenant_id)s AND source_id = %(source_id)s AND dedup_key = %(dedup_key)s
  AND expires_at > now()
"""

# Record a refused trigger request (source_rejections_pkey).
REJECT = """
INSERT INTO source_rejections (id, tenant_id, source_id, status_code, reason, client_ip,
                               header_names, body_size)
VALUES (%(id)s, %(tenant_id)s, %(source_id)s, %(status_code)s, %(reason)s, %(client_ip)s, %(header_names)s,
        %(body_size)s)
"""

# The newest refusals of a tenant's source (source_rejections_source_idx, sources_pkey).
REJECTIONS = """
SELECT r.id, r.status_code, r.reason, r.client_ip, r.header_names, r.body_size, r.created_at
FROM source_rejections r JOIN sources s ON s.tenant_id = r.tenant_id AND s.id = r.source_id
WHERE s.tenant_id = %(tenant_id)s AND s.id = %(id)s
ORDER BY r.id DESC
LIMIT %(limit)s
"""

# Forget expired receipts (source_receipts_expires_idx).
PURGE_RECEIPTS = "DELETE FROM source_receipts WHERE expires_at <= now()"

# Keep only the newest 100 refusals of each source (a sort of the table; maintenance only).
TRIM_REJECTIONS = """
DELETE FROM source_rejections WHERE id IN (
    SELECT id FROM (
        SELECT id, row_number() OVER (PARTITION BY source_id ORDER BY id DESC) AS n
        FROM source_rejections
    ) ranked
    WHERE n > 100
)
"""

KEPT_REJECTIONS = 100
NAME_KEY = "sources_tenant_id_name_key"


class NameTaken(Exception):
    """Another source of the tenant has this name."""


def _name_taken(exc: errors.UniqueViolation) -> Exception:
    return NameTaken() if exc.diag.constraint_name == NAME_KEY else exc


async def insert(conn: AsyncConnection, new: NewSource) -> Source:
    """Create a source (its secret sealed on the way in)."""
    params = as_jsonb(msgspec.structs.asdict(new), "verification")
    params["secret"] = _sealed(new.id, new.secret)
    try:
        row = await fetch_one(conn, INSERT, params, Source)
    except errors.UniqueViolation as exc:
        raise _name_taken(exc) from None
    assert row is not None
    return row


async def get(conn: AsyncConnection, tenant_id: uuid.UUID, source_id: uuid.UUID) -> Source | None:
    """One source of the tenant."""
    return await fetch_one(conn, GET, {"tenant_id": tenant_id, "id": source_id}, Source)


async def by_token(conn: AsyncConnection, token: str) -> SourceWithSecret | None:
    """The source whose trigger token this is, with its secret."""
    return await fetch_one(conn, BY_TOKEN, {"token": token}, SourceWithSecret)


async def list_page(
    conn: AsyncConnection, tenant_id: uuid.UUID, after: uuid.UUID | None, limit: int
) -> list[Source]:
    """Up to `limit` sources of the tenant after `after`, oldest first."""
    params = {"tenant_id": tenant_id, "after": after or uuid.UUID(int=0), "limit": limit}
    return await fetch_all(conn, LIST_PAGE, params, Source)


async def update(
    conn: AsyncConnection, tenant_id: uuid.UUID, source_id: uuid.UUID, changes: dict[str, Any]
) -> Source | None:
    """Change the fields named in changes["given"]."""
    params = as_jsonb({"tenant_id": tenant_id, "id": source_id, **changes}, "verification")
    params["secret"] = _sealed(source_id, changes.get("secret"))
    try:
        return await fetch_one(conn, UPDATE, params, Source)
    except errors.UniqueViolation as exc:
        raise _name_taken(exc) from None


async def delete(
    conn: AsyncConnection, tenant_id: uuid.UUID, source_id: uuid.UUID
) -> Source | None:
    """Delete a source; its token stops working."""
    return await fetch_one(conn, DELETE, {"tenant_id": tenant_id, "id": source_id}, Source)


async def get_with_secret(
    conn: AsyncConnection, tenant_id: uuid.UUID, source_id: uuid.UUID
) -> SourceWithSecret | None:
    """One source of the tenant with its secret."""
    params = {"tenant_id": tenant_id, "id": source_id}
    return await fetch_one(conn, GET_WITH_SECRET, params, SourceWithSecret)


async def rotate_token(
    conn: AsyncConnection, tenant_id: uuid.UUID, source_id: uuid.UUID, token: str
) -> Source | None:
    """Give the source a new trigger token."""
    params = {"tenant_id": tenant_id, "id": source_id, "token": token}
    return await fetch_one(conn, ROTATE_TOKEN, params, Source)


async def claim_receipt(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    source_id: uuid.UUID,
    dedup_key: str,
    event_id: uuid.UUID,
    ttl: timedelta,
) -> bool:
    """True when this event now holds the key; False when a live receipt already does."""
    params = {"tenant_id": tenant_id, "source_id": source_id, "dedup_key": dedup_key}
    params |= {"event_id": event_id, "ttl": ttl}
    return await fetch_value(conn, CLAIM_RECEIPT, params) is not None


async def receipt(
    conn: AsyncConnection, tenant_id: uuid.UUID, source_id: uuid.UUID, dedup_key: str
) -> uuid.UUID | None:
    """The event a live receipt names."""
    params = {"tenant_id": tenant_id, "source_id": source_id, "dedup_key": dedup_key}
    event_id: uuid.UUID | None = await fetch_value(conn, RECEIPT, params)
    return event_id


async def reject(
    conn: AsyncConnection, tenant_id: uuid.UUID, source_id: uuid.UUID, rejection: Rejection
) -> None:
    """Record a refused trigger request."""
    params = msgspec.structs.asdict(rejection)
    params.pop("created_at")
    await conn.execute(REJECT, {"tenant_id": tenant_id, "source_id": source_id, **params})


async def rejections(
    conn: AsyncConnection, tenant_id: uuid.UUID, source_id: uuid.UUID
) -> list[Rejection]:
    """The newest refusals of one source of the tenant."""
    params = {"tenant_id": tenant_id, "id": source_id, "limit": KEPT_REJECTIONS}
    return await fetch_all(conn, REJECTIONS, params, Rejection)


async def purge(conn: AsyncConnection) -> None:
    """Forget expired receipts and all but the newest refusals of each source."""
    await conn.execute(PURGE_RECEIPTS)
    await conn.execute(TRIM_REJECTIONS)
