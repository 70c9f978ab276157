"""SQL for request_logs: batches written by COPY, and a tenant's filtered pages."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection

from db.query import fetch_all


class RequestLog(msgspec.Struct, array_like=True):
    """One answered request (array_like: a row as COPY takes it)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    key_id: uuid.UUID | None
    method: str
    route: str
    status: int
    latency_ms: float
    request_id: str | None
    client_ip: str | None
    created_at: datetime


COLUMNS = (
    "id, tenant_id, key_id, method, route, status, latency_ms, request_id, client_ip, created_at"
)

# Write a batch (COPY: one round trip however many rows; the partition of each row's day).
COPY = f"COPY request_logs ({COLUMNS}) FROM STDIN"

# A page of a tenant's requests, newest first, before the cursor, each filter bound or null
# (request_logs_tenant_idx, in id order = time order; the filters are checked on those rows).
PAGE = f"""
SELECT {COLUMNS} FROM request_logs
WHERE tenant_id = %(tenant_id)s AND id < %(before)s
  AND (%(status)s::int IS NULL OR status = %(status)s)
  AND (%(method)s::text IS NULL OR method = %(method)s)
  AND (%(path)s::text IS NULL OR route = %(path)s)
  AND (%(key_id)s::uuid IS NULL OR key_id = %(key_id)s)
  AND (%(since)s::timestamptz IS NULL OR created_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR created_at < %(until)s)
ORDER BY id DESC
LIMIT %(limit)s
"""


async def write(conn: AsyncConnection, rows: Sequence[RequestLog]) -> None:
    """Write a batch in one COPY."""
    async with conn.cursor() as cur, cur.copy(COPY) as copy:
        for row in rows:
            await copy.write_row(msgspec.structs.astuple(row))


async def page(
    conn: AsyncConnection, tenant_id: uuid.UUID, filters: dict[str, Any]
) -> list[RequestLog]:
    """Requests of the tenant, newest first, with the filters of PAGE (all keys required)."""
    return await fetch_all(conn, PAGE, {"tenant_id": tenant_id, **filters}, RequestLog)
