"""Python client for Eventgate: `Client` (blocking) and `AsyncClient`, one method per API
operation, `iter_*` over paged lists, `stream_events` live, and `verify_webhook`."""

from eventgate_client import _generated as models
from eventgate_client._client import AsyncClient, Client, StreamClosed, StreamedEvent
from eventgate_client._generated import OPERATIONS
from eventgate_client.errors import (
    BadRequest,
    Conflict,
    EventgateError,
    Forbidden,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
)
from eventgate_client.webhooks import WebhookVerificationError, verify_webhook

__all__ = [
    "OPERATIONS",
    "AsyncClient",
    "BadRequest",
    "Client",
    "Conflict",
    "EventgateError",
    "Forbidden",
    "NotFound",
    "RateLimited",
    "ServiceUnavailable",
    "StreamClosed",
    "StreamedEvent",
    "Unauthorized",
    "WebhookVerificationError",
    "models",
    "verify_webhook",
]
