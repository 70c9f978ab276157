"""Delivery rules: what a tenant may see of its deliveries, and sending one again."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import AsyncConnection

from app.audit import record
from app.deliveries.schemas import AttemptView, DeliveryDetail, DeliveryList, DeliveryView
from app.errors import BadRequest, Conflict, NotFound
from app.pagination import decode_cursor, page_of
from app.views import to_view, to_views
from db import deliveries
from workers.enqueue import wake


async def list_page(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    cursor: str | None,
    limit: int,
    status: str | None,
    endpoint_id: uuid.UUID | None,
    event_id: uuid.UUID | None,
    endpoint_ids: list[uuid.UUID] | None = None,
) -> DeliveryList:
    """A page of the tenant's deliveries, newest first, optionally filtered."""
    rows = await deliveries.list_page(
        conn,
        tenant_id,
        before=decode_cursor(cursor),
        limit=limit + 1,
        status=status,
        endpoint_id=endpoint_id,
        endpoint_ids=endpoint_ids,
        event_id=event_id,
    )
    page, pagination = page_of(rows, limit, lambda row: row.id)
    return DeliveryList(to_views(page, DeliveryView), pagination)


async def labels(
    conn: AsyncConnection, tenant_id: uuid.UUID, views: list[DeliveryView]
) -> dict[uuid.UUID, deliveries.Label]:
    """Each listed delivery's endpoint and event type (for the console's lists)."""
    return await deliveries.labels(conn, tenant_id, views) if views else {}


async def outcomes(
    conn: AsyncConnection, tenant_id: uuid.UUID, events: list[Any]
) -> dict[uuid.UUID, deliveries.Outcomes]:
    """How each listed event's deliveries stand (for the console's lists)."""
    return await deliveries.outcomes(conn, tenant_id, events) if events else {}


async def get(
    conn: AsyncConnection, tenant_id: uuid.UUID, delivery_id: uuid.UUID
) -> DeliveryDetail:
    """One delivery with every try, or NotFound."""
    row = await deliveries.get(conn, tenant_id, delivery_id)
    if row is None:
        raise NotFound("no such delivery")
    attempts = await deliveries.attempts(conn, tenant_id, row)
    return DeliveryDetail(to_view(row, DeliveryView), to_views(attempts, AttemptView))


async def retry(
    conn: AsyncConnection, tenant_id: uuid.UUID, delivery_id: uuid.UUID
) -> DeliveryView:
    """Make a dead or failed delivery due now; Conflict for any other state."""
    row = await deliveries.retry(conn, tenant_id, delivery_id)
    if row is None:
        if await deliveries.get(conn, tenant_id, delivery_id) is None:
            raise NotFound("no such delivery")
        raise Conflict("only a dead or failed delivery can be retried")
    await wake(conn, [row.queue])
    return to_view(row, DeliveryView)


BULK_RETRY_LIMIT = 1000


async def retry_matching(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_ids: list[uuid.UUID], status: str
) -> int:
    """Send again up to 1,000 dead or failed deliveries of these endpoints (audited once);
    how many."""
    if status not in ("dead", "failed"):
        raise BadRequest("only dead or failed deliveries are retried together", {"field": "status"})
    per_queue = await deliveries.retry_matching(
        conn, tenant_id, endpoint_ids, status, BULK_RETRY_LIMIT
    )
    count = sum(per_queue.values())
    after = {"status": status, "endpoints": len(endpoint_ids), "retried": count}
    await record(conn, tenant_id, "delivery.bulk_retry", "delivery", "*", after=after)
    await wake(conn, list(per_queue))
    return count
