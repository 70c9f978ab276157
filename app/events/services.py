"""Event rules: checking what is ingested, storing it atomically, the inbox, acks and deletes."""

from __future__ import annotations

import contextlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import msgspec
import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from app.deliveries.schemas import DeliveryList, DeliveryView
from app.errors import BadRequest, Conflict, NotFound, PayloadTooLarge
from app.event_types.services import SchemaCache
from app.events.schemas import EventIn, EventView, InboxPage, KnownMetadata
from app.pagination import MAX_LIMIT, Pagination, decode_cursor, page_of
from app.views import to_view, to_views
from core import tracing
from core.metrics import EVENTS_INGESTED
from core.queues import LEAST_PROMISE_SLACK_SECONDS, PROMISE_GRACE_SECONDS
from core.settings import Settings
from core.vocabulary import RESERVED_TYPE_PREFIX
from db import deliveries, events, partitions
from db.ids import new_id
from workers.enqueue import wake

logger = logging.getLogger("eventgate.events")
MAX_EVENT_BYTES = 400 * 1024
_PATH = re.compile(r"at `\$\.?([^`]*)`")
_TRACER = tracing.tracer("eventgate.ingest")


def accepted_status(row: events.NewEvent) -> str:
    """`scheduled` for an event whose deliveries wait for their time, else `pending`."""
    if row.deliver_at is not None and row.deliver_at > datetime.now(UTC):
        return "scheduled"
    return "pending"


def check_deliver_at(deliver_at: datetime | None, horizon_days: int, where: str) -> None:
    """Refuse a delivery time beyond the horizon (a past one means now)."""
    if deliver_at is None:
        return
    if deliver_at > datetime.now(UTC) + timedelta(days=horizon_days):
        field = f"{where}deliver_at"
        message = f"`{field}` is more than {horizon_days} days ahead"
        raise BadRequest(message, {"field": field})


def prepare(
    tenant_id: uuid.UUID,
    event: EventIn,
    where: str = "",
    check_size: bool = True,
    horizon_days: int = 30,
) -> events.NewEvent:
    """Check one incoming event and turn it into the row to insert; a single event's size is
    already bounded by the request body limit, so only batch items need `check_size`."""
    metadata = event.metadata or {}
    check_deliver_at(event.deliver_at, horizon_days, where)
    if event.event_type.startswith(RESERVED_TYPE_PREFIX):
        field = f"{where}event_type"
        message = f"`{RESERVED_TYPE_PREFIX}` types are Eventgate's own operational events"
        raise BadRequest(message, {"field": field})
    try:
        known = msgspec.convert(metadata, KnownMetadata)
    except msgspec.ValidationError as exc:
        path = _PATH.search(str(exc))
        field = f"{where}metadata" + (f".{path.group(1)}" if path and path.group(1) else "")
        raise BadRequest(f"{exc} (field `{field}`)", {"field": field}) from exc
    if check_size and len(msgspec.json.encode(event.payload)) > MAX_EVENT_BYTES:
        raise PayloadTooLarge(f"{where}payload is larger than {MAX_EVENT_BYTES} bytes")
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
        channels=list(dict.fromkeys(event.channels)),  # each once: the inbox relies on it
        deliver_at=event.deliver_at,
    )


async def store(
    pool: AsyncConnectionPool,
    rows: list[events.NewEvent],
    days_ahead: int,
    schemas: SchemaCache,
    where: list[str] | None = None,
    joined: AsyncConnection | None = None,
) -> None:
    """Store the events and their deliveries atomically, then wake the workers; payloads of a
    type with a schema are checked before COMMIT. With `joined` (a request's transaction that
    also stores its Idempotency-Key answer) they commit with that one, which wakes them."""
    if joined is None:
        # The common case is one statement, one round trip: the event and its deliveries
        # commit together, or nothing is stored when a type has a schema to check first.
        fan_out = await _with_partitions(pool, None, days_ahead, _insert_unchecked(rows))
        if not fan_out.schema_versions:
            return
    payloads = [
        (where[i] if where else "", row.event_type, row.payload) for i, row in enumerate(rows)
    ]
    # A joined transaction commits after this returns, so its statement announces at COMMIT.
    checked = _insert_checked(rows, schemas, payloads, announce=joined is None)
    await _with_partitions(pool, joined, days_ahead, checked)


async def _announce(conn: AsyncConnection, fan_out: events.FanOut, started: float) -> None:
    """After COMMIT, announce the queues that got due deliveries, but not one whose engine
    promised to keep claiming it, when this ingest, from its statement, committed within the
    grace: a claim after that COMMIT sees these deliveries. A NOTIFY sent alone commits
    nothing to flush, so the notification queue's lock is held for moments, not for an
    ingest's flush."""
    took = time.monotonic() - started
    due = [
        queue
        for queue, slack in fan_out.due_queues.items()
        if slack < LEAST_PROMISE_SLACK_SECONDS or took >= PROMISE_GRACE_SECONDS
    ]
    if not due:
        return
    try:
        await wake(conn, due)
    except psycopg.Error as exc:
        # The events are stored: a lost announcement costs one poll interval, an error here
        # would have the client send them again.
        logger.warning("announcing the queues %s after ingest failed: %s", due, exc)


def _insert_unchecked(
    rows: list[events.NewEvent],
) -> Callable[[AsyncConnection], Awaitable[events.FanOut]]:
    async def run(conn: AsyncConnection) -> events.FanOut:
        # Timed from the statement, not the request: the promise's slack is read inside it
        # and its COMMIT is done when it returns, so a wait for the pool spends no slack.
        started = time.monotonic()
        fan_out = await events.insert_with_fan_out(
            conn, rows, only_unchecked=True, after_commit=True
        )
        await _announce(conn, fan_out, started)  # committed: the statement ran by itself
        return fan_out

    return run


def _insert_checked(
    rows: list[events.NewEvent],
    schemas: SchemaCache,
    payloads: list[tuple[str, str, dict]],
    announce: bool,
) -> Callable[[AsyncConnection], Awaitable[events.FanOut]]:
    """The checked insert; when this ingest commits by itself (`announce`) it announces
    after COMMIT, otherwise the statement announces at the joined transaction's COMMIT."""

    async def run(conn: AsyncConnection) -> events.FanOut:
        started = time.monotonic()  # before BEGIN: the slack is read inside the transaction
        async with conn.transaction():  # a transaction, or a savepoint of the joined one
            fan_out = await events.insert_with_fan_out(conn, rows, after_commit=announce)
            # Checked before COMMIT: a payload that fails takes its insert back with it.
            await schemas.validate(conn, rows[0].tenant_id, fan_out.schema_versions, payloads)
        if announce:
            await _announce(conn, fan_out, started)
        return fan_out

    return run


async def _with_partitions(
    pool: AsyncConnectionPool,
    joined: AsyncConnection | None,
    days_ahead: int,
    insert: Callable[[AsyncConnection], Awaitable[events.FanOut]],
) -> events.FanOut:
    """Run an insert; if its day's partition is missing, create the partitions and retry once
    (a fresh statement or transaction: the failed one is gone)."""
    for attempt in (1, 2):
        try:
            async with _connection(pool, joined) as conn:
                return await insert(conn)
        except psycopg.errors.CheckViolation as exc:
            if attempt == 2 or not (exc.diag.message_primary or "").startswith("no partition"):
                raise
        except psycopg.errors.UntranslatableCharacter as exc:
            raise BadRequest("payload or metadata holds \\u0000, which cannot be stored") from exc
        async with _connection(pool, joined) as conn:
            today = datetime.now(UTC).date()
            for table in partitions.PARTITIONED_TABLES:
                await partitions.create_ahead(conn, table, today, days_ahead)
    raise AssertionError("unreachable")


@contextlib.asynccontextmanager
async def _connection(
    pool: AsyncConnectionPool, joined: AsyncConnection | None
) -> AsyncIterator[AsyncConnection]:
    if joined is not None:
        async with joined.transaction():  # a savepoint: a failure leaves the joined one usable
            yield joined
    else:
        async with pool.connection() as conn:  # autocommit
            yield conn


class Ingest:
    """Event ingest for one API process: its pool, partition horizon and schema cache.

    One object, so an ingest route resolves a single dependency: Litestar resolves several
    at once in a task group, which costs more than the rest of the route's work."""

    def __init__(self, pool: AsyncConnectionPool, settings: Settings, schemas: SchemaCache) -> None:
        self._pool = pool
        self._days_ahead = settings.partitions_ahead_days
        self._horizon_days = settings.deliver_at_horizon_days
        self._schemas = schemas

    async def one(
        self, tenant_id: uuid.UUID, event: EventIn, joined: AsyncConnection | None = None
    ) -> events.NewEvent:
        """Check and store one event with its deliveries; returns the stored row."""
        row = prepare(tenant_id, event, check_size=False, horizon_days=self._horizon_days)
        await self._store([row], None, joined)
        EVENTS_INGESTED.inc()
        return row

    async def batch(
        self, tenant_id: uuid.UUID, batch: list[EventIn], joined: AsyncConnection | None = None
    ) -> list[events.NewEvent]:
        """Check and store a batch, all or nothing; returns the stored rows in request order."""
        where = [f"events[{i}]." for i in range(len(batch))]
        horizon = self._horizon_days
        rows = [prepare(tenant_id, e, where[i], horizon_days=horizon) for i, e in enumerate(batch)]
        await self._store(rows, where, joined)
        EVENTS_INGESTED.inc(len(rows))
        return rows

    async def _store(
        self, rows: list[events.NewEvent], where: list[str] | None, joined: AsyncConnection | None
    ) -> None:
        if not tracing.enabled():
            await store(self._pool, rows, self._days_ahead, self._schemas, where, joined)
            return
        # The fan-out's span is the parent of every delivery attempt of these events: its
        # traceparent is stored with them and read back by the worker.
        with _TRACER.start_as_current_span("eventgate.fan_out", attributes=_traced(rows)):
            traceparent = tracing.current_traceparent()
            for row in rows:
                row.traceparent = traceparent
            await store(self._pool, rows, self._days_ahead, self._schemas, where, joined)


def _traced(rows: list[events.NewEvent]) -> dict[str, str | int]:
    """A fan-out span's attributes: ids, type and count, never a payload."""
    first = rows[0]
    attributes: dict[str, str | int] = {
        "eventgate.tenant.id": str(first.tenant_id),
        "eventgate.events": len(rows),
    }
    if len(rows) == 1:
        attributes["eventgate.event.id"] = str(first.id)
        attributes["eventgate.event.type"] = first.event_type
    return attributes


async def get(conn: AsyncConnection, tenant_id: uuid.UUID, event_id: uuid.UUID) -> EventView:
    """One event of the tenant, or NotFound."""
    event = await events.get(conn, tenant_id, event_id)
    if event is None:
        raise NotFound("no such event")
    return to_view(event, EventView)


async def inbox_page(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    cursor: str | None,
    filters: dict[str, str],
    limit: int,
    request_id: str,
) -> InboxPage:
    """A page of the tenant's pending events, oldest first, filtered by source, event_type
    and channel."""
    rows = await events.inbox_page(
        conn, tenant_id, after=decode_cursor(cursor), filters=filters, limit=limit + 1
    )
    page, pagination = page_of(rows, limit, lambda event: event.id)
    return InboxPage(to_views(page, EventView), pagination, request_id)


async def event_deliveries(
    conn: AsyncConnection, tenant_id: uuid.UUID, event_id: uuid.UUID
) -> DeliveryList:
    """The deliveries of one event of the tenant (at most MAX_LIMIT), or NotFound."""
    event = await get(conn, tenant_id, event_id)
    rows = await deliveries.list_page(
        conn, tenant_id, before=None, limit=MAX_LIMIT, event_id=event.id
    )
    return DeliveryList(to_views(rows, DeliveryView), Pagination(None, MAX_LIMIT))


async def ack(conn: AsyncConnection, tenant_id: uuid.UUID, event_id: uuid.UUID) -> datetime:
    """Acknowledge a pending event once: Conflict after the first time, NotFound if absent."""
    acknowledged_at = await events.ack(conn, tenant_id, event_id)
    if acknowledged_at is None:
        await get(conn, tenant_id, event_id)
        raise Conflict("the event was already acknowledged")
    return acknowledged_at


async def delete(conn: AsyncConnection, tenant_id: uuid.UUID, event_id: uuid.UUID) -> bool:
    """Delete an event of the tenant; True when there was one."""
    return await events.delete(conn, tenant_id, event_id)
