"""SQL for the endpoints table (webhook subscriptions and their circuit breaker)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb


class Endpoint(msgspec.Struct):
    """One endpoints row, without its secrets."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    is_active: bool
    disabled_reason: str | None
    rate_limit_per_s: int | None
    ordered: bool
    metadata: dict[str, Any]
    consecutive_failures: int
    failing_since: datetime | None
    circuit_open_until: datetime | None
    created_at: datetime
    updated_at: datetime


class Secrets(msgspec.Struct):
    """An endpoint's signing secrets; previous is set while a rotation's grace lasts."""

    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None


COLUMNS = (
    "id, tenant_id, url, description, event_types, is_active, disabled_reason, rate_limit_per_s,"
    " ordered, metadata, consecutive_failures, failing_since, circuit_open_until, created_at,"
    " updated_at"
)
UNFINISHED = "('pending', 'delivering', 'failed')"
LIVE = "tenant_id = %(tenant_id)s AND id = %(id)s AND deleted_at IS NULL"

INSERT = f"""
INSERT INTO endpoints (id, tenant_id, url, description, event_types, secret, rate_limit_per_s,
                       ordered, metadata)
VALUES (%(id)s, %(tenant_id)s, %(url)s, %(description)s, %(event_types)s, %(secret)s,
        %(rate_limit_per_s)s, %(ordered)s, %(metadata)s)
RETURNING {COLUMNS}
"""

GET = f"SELECT {COLUMNS} FROM endpoints WHERE {LIVE}"

LIST_PAGE = f"""
SELECT {COLUMNS} FROM endpoints
WHERE tenant_id = %(tenant_id)s AND deleted_at IS NULL AND (%(after)s::uuid IS NULL OR id > %(after)s)
ORDER BY id
LIMIT %(limit)s
"""

# PATCH: only the fields given change (the set of given fields is bound as a text[]).
UPDATE = f"""
UPDATE endpoints SET
    url = CASE WHEN 'url' = ANY(%(given)s) THEN %(url)s ELSE url END,
    description = CASE WHEN 'description' = ANY(%(given)s) THEN %(description)s ELSE description END,
    event_types = CASE WHEN 'event_types' = ANY(%(given)s) THEN %(event_types)s ELSE event_types END,
    rate_limit_per_s = CASE WHEN 'rate_limit_per_s' = ANY(%(given)s)
                            THEN %(rate_limit_per_s)s ELSE rate_limit_per_s END,
    ordered = CASE WHEN 'ordered' = ANY(%(given)s) THEN %(ordered)s ELSE ordered END,
    metadata = CASE WHEN 'metadata' = ANY(%(given)s) THEN %(metadata)s ELSE metadata END,
    updated_at = now()
WHERE {LIVE}
RETURNING {COLUMNS}
"""

GET_SECRETS = f"""
SELECT secret,
       CASE WHEN previous_secret_expires_at > now() THEN previous_secret END AS previous_secret,
       CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END
           AS previous_secret_expires_at
FROM endpoints WHERE {LIVE}
"""

ROTATE_SECRET = f"""
UPDATE endpoints SET previous_secret = secret, secret = %(secret)s,
    previous_secret_expires_at = now() + make_interval(secs => %(grace_seconds)s), updated_at = now()
WHERE {LIVE}
RETURNING secret, previous_secret, previous_secret_expires_at
"""

# Disabling parks the endpoint's unfinished deliveries (never due) so claims skip them cheaply.
DISABLE = f"""
WITH endpoint AS (
    UPDATE endpoints SET is_active = false, disabled_reason = %(reason)s, updated_at = now()
    WHERE {LIVE}
    RETURNING {COLUMNS}
), parked AS (
    UPDATE deliveries SET next_attempt_at = 'infinity', updated_at = now()
    WHERE endpoint_id = (SELECT id FROM endpoint) AND status IN ('pending', 'failed')
)
SELECT * FROM endpoint
"""

# Enabling closes the circuit and makes every waiting delivery due now.
ENABLE = f"""
WITH endpoint AS (
    UPDATE endpoints SET is_active = true, disabled_reason = NULL, consecutive_failures = 0,
        failing_since = NULL, circuit_open_until = NULL, updated_at = now()
    WHERE {LIVE}
    RETURNING {COLUMNS}
), released AS (
    UPDATE deliveries SET next_attempt_at = now(), updated_at = now()
    WHERE endpoint_id = (SELECT id FROM endpoint) AND status IN ('pending', 'failed')
      AND next_attempt_at > now()
    RETURNING queue
)
SELECT endpoint.*, ARRAY(SELECT DISTINCT queue FROM released) AS queues FROM endpoint
"""

# Deleting keeps the row for history; its unfinished deliveries can never go, so they end dead.
DELETE = f"""
WITH endpoint AS (
    UPDATE endpoints SET deleted_at = now(), is_active = false, disabled_reason = 'deleted',
        updated_at = now()
    WHERE {LIVE}
    RETURNING {COLUMNS}
), ended AS (
    UPDATE deliveries SET status = 'dead', last_error = 'endpoint deleted', updated_at = now()
    WHERE endpoint_id = (SELECT id FROM endpoint) AND status IN {UNFINISHED}
)
SELECT * FROM endpoint
"""


async def insert(
    conn: AsyncConnection, endpoint_id: uuid.UUID, tenant_id: uuid.UUID, secret: str, **fields: Any
) -> Endpoint:
    """Create an endpoint."""
    params = {**fields, "id": endpoint_id, "tenant_id": tenant_id, "secret": secret}
    params["metadata"] = Jsonb(fields["metadata"])
    async with conn.cursor(row_factory=class_row(Endpoint)) as cur:
        await cur.execute(INSERT, params)
        row = await cur.fetchone()
    assert row is not None
    return row


async def _one(conn: AsyncConnection, query: str, params: dict[str, Any]) -> Endpoint | None:
    async with conn.cursor(row_factory=class_row(Endpoint)) as cur:
        await cur.execute(query, params)
        return await cur.fetchone()


async def get(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> Endpoint | None:
    """One live endpoint of the tenant."""
    return await _one(conn, GET, {"tenant_id": tenant_id, "id": endpoint_id})


async def list_page(
    conn: AsyncConnection, tenant_id: uuid.UUID, after: uuid.UUID | None, limit: int
) -> list[Endpoint]:
    """Up to `limit` live endpoints after `after`, oldest first."""
    async with conn.cursor(row_factory=class_row(Endpoint)) as cur:
        await cur.execute(LIST_PAGE, {"tenant_id": tenant_id, "after": after, "limit": limit})
        return await cur.fetchall()


async def update(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, changes: dict[str, Any]
) -> Endpoint | None:
    """Change the given fields of an endpoint."""
    params: dict[str, Any] = dict.fromkeys(
        ("url", "description", "event_types", "rate_limit_per_s", "ordered", "metadata")
    )
    params.update(changes)
    params["metadata"] = Jsonb(params["metadata"]) if params["metadata"] is not None else None
    params.update(tenant_id=tenant_id, id=endpoint_id, given=list(changes))
    return await _one(conn, UPDATE, params)


async def get_secrets(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> Secrets | None:
    """The endpoint's current (and, during a rotation, previous) secret."""
    async with conn.cursor(row_factory=class_row(Secrets)) as cur:
        await cur.execute(GET_SECRETS, {"tenant_id": tenant_id, "id": endpoint_id})
        return await cur.fetchone()


async def rotate_secret(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    secret: str,
    grace_seconds: float,
) -> Secrets | None:
    """Make `secret` current; the old one keeps signing for grace_seconds."""
    params = {"tenant_id": tenant_id, "id": endpoint_id, "secret": secret}
    async with conn.cursor(row_factory=class_row(Secrets)) as cur:
        await cur.execute(ROTATE_SECRET, {**params, "grace_seconds": grace_seconds})
        return await cur.fetchone()


async def disable(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, reason: str
) -> Endpoint | None:
    """Pause an endpoint; its deliveries wait."""
    return await _one(conn, DISABLE, {"tenant_id": tenant_id, "id": endpoint_id, "reason": reason})


async def enable(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> tuple[Endpoint, list[str]] | None:
    """Resume an endpoint; returns it and the queues whose deliveries became due."""
    cur = await conn.execute(ENABLE, {"tenant_id": tenant_id, "id": endpoint_id})
    row = await cur.fetchone()
    if row is None:
        return None
    names = [d.name for d in cur.description or []]
    values = dict(zip(names, row, strict=True))
    queues = values.pop("queues")
    return msgspec.convert(values, Endpoint), queues


async def delete(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> Endpoint | None:
    """Delete an endpoint (kept for history) and end its unfinished deliveries."""
    return await _one(conn, DELETE, {"tenant_id": tenant_id, "id": endpoint_id})
