"""Routes under /v1/events and /v1/inbox."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, delete, get, post
from litestar.params import HeaderParameter, JSONBody, QueryParameter
from litestar.response import Stream

from app.api import ApiController
from app.deliveries.schemas import DeliveryList
from app.dependencies import Caller, Ingestor, Reader, Streams, Transaction
from app.events import services
from app.events.schemas import (
    CHANNEL_PATTERN,
    Acknowledged,
    BatchAccepted,
    BatchItem,
    Deleted,
    EventAccepted,
    EventBatchIn,
    EventIn,
    EventView,
    InboxPage,
)
from app.events.stream import SLOW_CONSUMER_GUARD, STREAM_DESCRIPTION, open_stream
from app.http_hygiene import NO_COMPRESSION
from app.idempotency import SHARED_TRANSACTION
from app.identifiers import IdPath, parse_id
from app.media import check_json_body
from app.openapi import error_responses
from app.pagination import Cursor, Limit
from app.request_id import request_id
from app.scopes import EVENTS_READ, EVENTS_WRITE

MAX_BATCH_BYTES = 16 * 1024 * 1024
SourceFilter = Annotated[
    str | None, QueryParameter(description="Only this source", min_length=1, max_length=255)
]
EventTypeFilter = Annotated[
    str | None, QueryParameter(description="Only this event type", min_length=1, max_length=255)
]
LastEventId = Annotated[
    str | None,
    HeaderParameter(
        name="Last-Event-ID",
        description="Resume after this event (the `id` of the last message received)",
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_-]+$",
    ),
]
ChannelFilter = Annotated[
    str | None,
    QueryParameter(description="Only events carrying this channel", pattern=CHANNEL_PATTERN),
]


class EventController(ApiController):
    """Ingest events, read them, acknowledge and delete them."""

    path = "/v1/events"
    tags = ["events"]  # noqa: RUF012 - Litestar reads class attributes

    @post(
        "/",
        summary="Ingest one event",
        opt={"scope": EVENTS_WRITE, NO_COMPRESSION: True},
        before_request=check_json_body,
        request_max_body_size=services.MAX_EVENT_BYTES,
        responses=error_responses(400, 401, 403, 413, 415),
    )
    async def ingest_event(
        self, data: JSONBody[EventIn], request: Request, ingest: Ingestor
    ) -> EventAccepted:
        # request.user, not the `caller` dependency: one dependency resolves much faster.
        joined = request.scope.get(SHARED_TRANSACTION)
        row = await ingest.one(request.user.tenant_id, data, joined)
        rid = request_id(request.scope)
        status = services.accepted_status(row)
        return EventAccepted(row.id, row.created_at, status, "event accepted", rid, row.deliver_at)

    @post(
        "/batch",
        summary="Ingest up to 500 events, all or nothing",
        opt={"scope": EVENTS_WRITE},
        before_request=check_json_body,
        request_max_body_size=MAX_BATCH_BYTES,
        responses=error_responses(400, 401, 403, 413, 415),
    )
    async def ingest_batch(
        self, data: JSONBody[EventBatchIn], request: Request, ingest: Ingestor
    ) -> BatchAccepted:
        joined = request.scope.get(SHARED_TRANSACTION)
        rows = await ingest.batch(request.user.tenant_id, data.events, joined)
        items = [
            BatchItem(row.id, row.created_at, services.accepted_status(row), row.deliver_at)
            for row in rows
        ]
        return BatchAccepted(items, len(items), "events accepted", request_id(request.scope))

    @get(
        "/stream",
        summary="Follow pending events live (Server-Sent Events)",
        description=STREAM_DESCRIPTION,
        opt={"scope": EVENTS_READ, NO_COMPRESSION: True},
        middleware=[SLOW_CONSUMER_GUARD],
        media_type="text/event-stream",
        responses=error_responses(400, 401, 403, 429),
    )
    async def stream_events(
        self,
        request: Request,
        streams: Streams,
        last_event_id: LastEventId = None,
        cursor: Cursor = None,
        source: SourceFilter = None,
        event_type: EventTypeFilter = None,
        channel: ChannelFilter = None,
    ) -> Stream:
        filters = {"source": source, "event_type": event_type, "channel": channel}
        given = {name: value for name, value in filters.items() if value is not None}
        return await open_stream(request, streams, last_event_id or cursor, given)

    @get(
        "/{event_id:str}",
        summary="Get an event",
        opt={"scope": EVENTS_READ},
        responses=error_responses(400, 401, 403, 404),
    )
    async def get_event(self, event_id: IdPath, conn: Transaction, caller: Caller) -> EventView:
        return await services.get(conn, caller.tenant_id, parse_id(event_id, "event_id"))

    @get(
        "/{event_id:str}/deliveries",
        summary="List the deliveries of an event (at most 100)",
        opt={"scope": EVENTS_READ},
        responses=error_responses(400, 401, 403, 404),
    )
    async def list_event_deliveries(
        self, event_id: IdPath, conn: Transaction, caller: Caller
    ) -> DeliveryList:
        event_uuid = parse_id(event_id, "event_id")
        return await services.event_deliveries(conn, caller.tenant_id, event_uuid)

    @post(
        "/{event_id:str}/ack",
        summary="Acknowledge a pending event (409 if already acknowledged)",
        status_code=200,
        opt={"scope": EVENTS_READ},
        responses=error_responses(400, 401, 403, 404, 409),
    )
    async def ack_event(
        self, event_id: IdPath, request: Request, conn: Transaction, caller: Caller
    ) -> Acknowledged:
        event_uuid = parse_id(event_id, "event_id")
        acknowledged_at = await services.ack(conn, caller.tenant_id, event_uuid)
        return Acknowledged(event_uuid, "acknowledged", acknowledged_at, request_id(request.scope))

    @delete(
        "/{event_id:str}",
        summary="Delete an event (200 whether or not it existed)",
        status_code=200,
        opt={"scope": EVENTS_WRITE},
        responses=error_responses(400, 401, 403),
    )
    async def delete_event(
        self, event_id: IdPath, request: Request, conn: Transaction, caller: Caller
    ) -> Deleted:
        event_uuid = parse_id(event_id, "event_id")
        deleted = await services.delete(conn, caller.tenant_id, event_uuid)
        return Deleted(event_uuid, deleted, request_id(request.scope))


class InboxController(ApiController):
    """The pull inbox: pending events, oldest first."""

    path = "/v1/inbox"
    tags = ["events"]  # noqa: RUF012

    @get(
        "/",
        summary="List pending events, oldest first",
        opt={"scope": EVENTS_READ},
        responses=error_responses(400, 401, 403),
    )
    async def list_inbox(
        self,
        request: Request,
        reader: Reader,
        caller: Caller,
        limit: Limit = 50,
        cursor: Cursor = None,
        source: SourceFilter = None,
        event_type: EventTypeFilter = None,
        channel: ChannelFilter = None,
    ) -> InboxPage:
        filters = {"source": source, "event_type": event_type, "channel": channel}
        return await services.inbox_page(
            reader,
            caller.tenant_id,
            cursor=cursor,
            filters={name: value for name, value in filters.items() if value is not None},
            limit=limit,
            request_id=request_id(request.scope),
        )
