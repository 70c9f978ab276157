"""Endpoint rules: destinations checked, secrets generated and rotated, test sends."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection

from app.endpoints.destinations import RefusedDestination, check_destination
from app.endpoints.destinations import check_url as well_formed
from app.endpoints.schemas import EndpointIn, EndpointPatch, EndpointView
from app.errors import BadRequest, Conflict, NotFound
from db import deliveries, endpoints, events
from db.ids import new_id
from workers.delivery import wake
from workers.signing import new_secret

SECRET_GRACE_SECONDS = 24 * 3600
TEST_EVENT_TYPE = "eventgate.test"


def circuit_state(row: endpoints.Endpoint) -> str:
    """closed, open (deliveries held back) or half-open (one probe at a time)."""
    if row.circuit_open_until is None:
        return "closed"
    if row.circuit_open_until > datetime.now(UTC):
        return "open"
    return "half-open"


def view(row: endpoints.Endpoint) -> EndpointView:
    """The public view of an endpoint."""
    return EndpointView(
        row.id,
        row.url,
        row.description,
        row.event_types,
        row.is_active,
        row.disabled_reason,
        row.rate_limit_per_s,
        row.ordered,
        row.metadata,
        circuit_state(row),
        row.consecutive_failures,
        row.failing_since,
        row.created_at,
        row.updated_at,
    )


async def check_url(url: str, allow_private: bool) -> None:
    """BadRequest for a URL that is not http(s) or leads to a non-public address."""
    try:
        if allow_private:
            well_formed(url)
        else:
            await check_destination(url)
    except RefusedDestination as exc:
        raise BadRequest(f"url refused: {exc}", {"field": "url"}) from exc


async def create(
    conn: AsyncConnection, tenant_id: uuid.UUID, data: EndpointIn, allow_private: bool
) -> tuple[endpoints.Endpoint, str]:
    """Create an endpoint with a fresh secret."""
    await check_url(data.url, allow_private)
    secret = new_secret()
    fields = msgspec.structs.asdict(data)
    row = await endpoints.insert(conn, new_id(), tenant_id, secret, **fields)
    return row, secret


async def get(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> endpoints.Endpoint:
    """One live endpoint, or NotFound."""
    row = await endpoints.get(conn, tenant_id, endpoint_id)
    if row is None:
        raise NotFound("no such endpoint")
    return row


async def update(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    data: EndpointPatch,
    allow_private: bool,
) -> endpoints.Endpoint:
    """Apply a PATCH (a new url is checked like a new endpoint's)."""
    changes: dict[str, Any] = {
        name: value
        for name, value in msgspec.structs.asdict(data).items()
        if value is not msgspec.UNSET
    }
    if "url" in changes:
        await check_url(changes["url"], allow_private)
    row = await endpoints.update(conn, tenant_id, endpoint_id, changes)
    if row is None:
        raise NotFound("no such endpoint")
    return row


async def rotate_secret(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, secret: str | None
) -> endpoints.Secrets:
    """Switch to a new secret; the old one keeps signing for 24 hours."""
    row = await endpoints.rotate_secret(
        conn, tenant_id, endpoint_id, secret or new_secret(), SECRET_GRACE_SECONDS
    )
    if row is None:
        raise NotFound("no such endpoint")
    return row


async def enable(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> endpoints.Endpoint:
    """Resume an endpoint: its waiting deliveries go now."""
    found = await endpoints.enable(conn, tenant_id, endpoint_id)
    if found is None:
        raise NotFound("no such endpoint")
    row, queues = found
    await wake(conn, queues)
    return row


async def send_test(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> tuple[uuid.UUID, uuid.UUID]:
    """Store a test event (acknowledged, so not in the inbox) and a delivery of it to this
    endpoint only, and wake a worker."""
    row = await get(conn, tenant_id, endpoint_id)
    if not row.is_active:
        raise Conflict("the endpoint is disabled; enable it first")
    event = events.NewEvent(
        id=new_id(),
        tenant_id=tenant_id,
        source="eventgate",
        event_type=TEST_EVENT_TYPE,
        payload={"message": "a test event sent by Eventgate", "endpoint_id": str(endpoint_id)},
        metadata={"priority": "high"},
        idempotency_key=None,
        correlation_id=None,
        priority="high",
    )
    await events.insert_acknowledged(conn, event)
    delivery_id = await deliveries.insert_one(
        conn, tenant_id=tenant_id, event_id=event.id, endpoint_id=endpoint_id, queue="critical"
    )
    await wake(conn, ["critical"])
    return event.id, delivery_id
