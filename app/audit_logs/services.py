"""Reading the audit trail: a tenant's entries, newest first, filtered, in keyset pages."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from psycopg import AsyncConnection

from app.audit_logs.schemas import AuditEntryView, AuditLogPage
from app.errors import BadRequest
from app.pagination import Pagination, check_window, decode_name_cursor, encode_name_cursor
from db import audit

FILTERS = ("action", "resource_type", "resource_id", "actor_key_id", "since", "until")


def _before_seq(cursor: str | None) -> int:
    text = decode_name_cursor(cursor)
    if text is None:
        return 2**63 - 1
    if not text.isdigit() or len(text) > 18:
        raise BadRequest("the cursor is not valid", {"field": "cursor"})
    return int(text)


def _view(entry: audit.Entry) -> AuditEntryView:
    fields = msgspec.structs.asdict(entry)
    fields["hash"] = entry.hash.hex()
    return AuditEntryView(**fields)


async def page(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    filters: dict[str, Any],
    cursor: str | None,
    limit: int,
) -> AuditLogPage:
    """A page of the tenant's audit entries matching every given filter."""
    check_window(filters.get("since"), filters.get("until"))
    params = {name: filters.get(name) for name in FILTERS}
    params.update(before_seq=_before_seq(cursor), limit=limit + 1)
    rows = await audit.page(conn, tenant_id, params)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_name_cursor(str(rows[-1].seq)) if more else None
    return AuditLogPage([_view(row) for row in rows], Pagination(next_cursor, limit))
