"""Response bodies of the /v1/deliveries routes."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from app.pagination import Pagination
from core.vocabulary import DeliveryStatus

# The statuses a delivery list filters on.
Status = DeliveryStatus


class DeliveryView(msgspec.Struct):
    """One delivery of an event to an endpoint."""

    id: uuid.UUID
    event_id: uuid.UUID
    endpoint_id: uuid.UUID
    queue: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: datetime | None
    # Not sent before this time (its event's deliver_at); null: at once.
    deliver_at: datetime | None
    created_at: datetime
    updated_at: datetime


class AttemptView(msgspec.Struct):
    """One HTTP try of a delivery."""

    id: uuid.UUID
    attempt: int
    status_code: int | None
    response_body: str | None
    latency_ms: int
    error: str | None
    started_at: datetime
    # What the try sent (Authorization and the endpoint's own header values redacted) and
    # what the answer carried; null when there was none.
    request_headers: dict[str, str] | None = None
    response_headers: dict[str, str] | None = None


class DeliveryDetail(msgspec.Struct):
    """A delivery with every try, oldest first."""

    delivery: DeliveryView
    attempts: list[AttemptView]


class DeliveryList(msgspec.Struct):
    """A page of deliveries, newest first."""

    deliveries: list[DeliveryView]
    pagination: Pagination
