"""Reading the request logs: a tenant's requests, newest first, filtered, in keyset pages."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import AsyncConnection

from app.pagination import check_window, decode_cursor, page_of
from app.request_logs.schemas import RequestLogPage, RequestLogView
from app.views import to_views
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
    check_window(filters.get("since"), filters.get("until"))
    params = {**filters, "before": decode_cursor(cursor) or NEWEST, "limit": limit + 1}
    rows = await request_logs.page(conn, tenant_id, params)
    shown, pagination = page_of(rows, limit, lambda row: row.id)
    return RequestLogPage(to_views(shown, RequestLogView), pagination)
