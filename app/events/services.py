"""Event rules: checking what is ingested, storing it atomically, the inbox and acks."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import msgspec
import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from app.errors import BadRequest, Conflict, NotFound, PayloadTooLarge
from app.event_types.services import SchemaCache
from app.events.schemas import EventIn, EventView, KnownMetadata
from db import events, partitions
from db.ids import new_id
from workers.delivery import wake

_PATH = re.compile(r"at `\$\.?([^`]*)`")


def prepare(
    tenant_id: uuid.UUID, event: EventIn, max_bytes: int, where: str = ""
) -> events.NewEvent:
    """Check one incoming event and turn it into the row to insert."""
    metadata = event.metadata or {}
    try:
        known = msgspec.convert(metadata, KnownMetadata)
    except msgspec.ValidationError as exc:
        path = _PATH.search(str(exc))
        field = f"{where}metadata" + (f".{path.group(1)}" if path and path.group(1) else "")
        raise BadRequest(f"{exc} (field `{field}`)", {"field": field}) from exc
    if max_bytes and len(msgspec.json.encode(event.payload)) > max_bytes:
        raise PayloadTooLarge(f"{where}payload is larger than {max_bytes} bytes")
    return events.NewEvent(
        id=new_id(),
        tenant_id=tenant_id,
        source=event.source,
        event_type=event.event_type,
        payload=event.payload,
        metadata={**metadata, "priority": known.priority},
        idempotency_key=known.idempotency_key,
        correlation_id=known.correlation_id,
        priority=known.priority,
    )


async def store(
    pool: AsyncConnectionPool,
    rows: list[events.NewEvent],
    days_ahead: int,
    schemas: SchemaCache,
    where: list[str] | None = None,
) -> None:
    """Store the events, their deliveries and the jobs that deliver them in one transaction,
    committed only if every payload matches its type's schema."""
    payloads = [
        (where[i] if where else "", row.event_type, row.payload) for i, row in enumerate(rows)
    ]
    for attempt in (1, 2):
        try:
            # Not pipelined: measured, psycopg's pipeline costs more CPU than its round trips.
            async with pool.connection() as conn, conn.transaction():
                fan_out = await events.insert_with_fan_out(conn, rows)
                # Checked before COMMIT: a payload that fails takes its insert back with it.
                await schemas.validate(conn, rows[0].tenant_id, fan_out.schema_versions, payloads)
                await wake(conn, fan_out.wake_queues)
            return
        except psycopg.errors.CheckViolation as exc:
            if attempt == 2 or not (exc.diag.message_primary or "").startswith("no partition"):
                raise
        except psycopg.errors.UntranslatableCharacter as exc:
            raise BadRequest("payload or metadata holds \\u0000, which cannot be stored") from exc
        async with pool.connection() as conn:
            today = datetime.now(UTC).date()
            for table in partitions.PARTITIONED_TABLES:
                await partitions.create_ahead(conn, table, today, days_ahead)


def view(event: events.Event) -> EventView:
    """The public view of a stored event."""
    return EventView(
        event.id,
        event.source,
        event.event_type,
        event.payload,
        event.metadata,
        event.status,
        event.acknowledged_at,
        event.created_at,
    )


async def get(conn: AsyncConnection, tenant_id: uuid.UUID, event_id: uuid.UUID) -> events.Event:
    """One event of the tenant, or NotFound."""
    event = await events.get(conn, tenant_id, event_id)
    if event is None:
        raise NotFound("no such event")
    return event


async def ack(conn: AsyncConnection, tenant_id: uuid.UUID, event_id: uuid.UUID) -> datetime:
    """Acknowledge a pending event once: Conflict after the first time, NotFound if absent."""
    acknowledged_at = await events.ack(conn, tenant_id, event_id)
    if acknowledged_at is None:
        await get(conn, tenant_id, event_id)
        raise Conflict("the event was already acknowledged")
    return acknowledged_at
