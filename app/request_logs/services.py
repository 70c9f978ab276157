"""Reading the request logs: a tenant's requests, newest first, filtered, in keyset pages."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection

from app.errors import BadRequest
from app.pagination import Pagination, decode_cursor, encode_cursor
from app.request_logs.schemas import RequestLogPage, RequestLogView
from db import request_logs

NEWEST = uuid.UUID(int=2**128 - 1)


async def page(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    filters: dict[str, Any],
    cursor: str | None,
    limit: int,
) -> RequestLogPage:
    """A page of the tenant's requests matching every given filter."""
    since, until = filters.get("since"), filters.get("until")
    if isinstance(since, datetime) and isinstance(until, datetime) and since >= until:
        raise BadRequest("since must be before until", {"field": "since"})
    params = {**filters, "before": decode_cursor(cursor) or NEWEST, "limit": limit + 1}
    rows = await request_logs.page(conn, tenant_id, params)
    more = len(rows) > limit
    rows = rows[:limit]
    views = [RequestLogView(**_fields(row)) for row in rows]
    return RequestLogPage(views, Pagination(encode_cursor(rows[-1].id) if more else None, limit))


def _fields(row: request_logs.RequestLog) -> dict[str, Any]:
    fields = msgspec.structs.asdict(row)
    fields.pop("tenant_id")
    return fields
