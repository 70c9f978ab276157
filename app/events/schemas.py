"""Request and response bodies of the /v1/events and /v1/inbox routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from app.pagination import Pagination

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
Priority = Literal["low", "normal", "high"]
# Channels address events to one customer (or any group); endpoints subscribe to them.
CHANNEL_PATTERN = r"^[A-Za-z0-9_.:@-]{1,128}$"
Channel = Annotated[str, msgspec.Meta(pattern=CHANNEL_PATTERN)]
Channels = Annotated[list[Channel], msgspec.Meta(max_length=10)]


class EventIn(msgspec.Struct, forbid_unknown_fields=True):
    """An event to ingest. metadata is free-form; correlation_id, priority and
    idempotency_key in it have meaning and are checked."""

    source: Name
    event_type: Name
    payload: dict[str, Any]
    metadata: dict[str, Any] | None = None
    channels: Channels = msgspec.field(default_factory=list)
    # When its deliveries go out (RFC 3339 with an offset); past or absent: at once.
    deliver_at: Annotated[datetime, msgspec.Meta(tz=True)] | None = None


class KnownMetadata(msgspec.Struct):
    """The metadata keys Eventgate interprets (others are stored as given)."""

    correlation_id: Annotated[str, msgspec.Meta(max_length=255)] | None = None
    priority: Priority = "normal"
    idempotency_key: Annotated[str, msgspec.Meta(min_length=1, max_length=255)] | None = None


class EventBatchIn(msgspec.Struct, forbid_unknown_fields=True):
    """Up to 500 events, stored all together or not at all."""

    events: Annotated[list[EventIn], msgspec.Meta(min_length=1, max_length=500)]


class EventAccepted(msgspec.Struct):
    """The answer to an accepted event."""

    event_id: uuid.UUID
    created_at: datetime
    status: str
    message: str
    request_id: str
    deliver_at: datetime | None = None


class BatchItem(msgspec.Struct):
    """One accepted event of a batch, in request order."""

    event_id: uuid.UUID
    created_at: datetime
    status: str
    deliver_at: datetime | None = None


class BatchAccepted(msgspec.Struct):
    """The answer to an accepted batch."""

    events: list[BatchItem]
    count: int
    message: str
    request_id: str


class EventView(msgspec.Struct):
    """A stored event."""

    id: uuid.UUID
    source: str
    event_type: str
    payload: dict[str, Any]
    metadata: dict[str, Any]
    channels: list[str]
    # pending or acknowledged (the inbox), or scheduled: pending, deliveries not yet due.
    status: str
    acknowledged_at: datetime | None
    deliver_at: datetime | None
    created_at: datetime


class InboxPage(msgspec.Struct):
    """Pending events, oldest first."""

    events: list[EventView]
    pagination: Pagination
    request_id: str


class Acknowledged(msgspec.Struct):
    """The answer to a first acknowledgement."""

    event_id: uuid.UUID
    status: str
    acknowledged_at: datetime
    request_id: str


class Deleted(msgspec.Struct):
    """The answer to a delete (the same whether or not the event existed)."""

    event_id: uuid.UUID
    deleted: bool
    request_id: str
