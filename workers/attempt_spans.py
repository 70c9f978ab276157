"""The span of one delivery attempt, a child of its event's fan-out across the queue.

Only used while tracing is on (`core/tracing.py`). Attributes name ids, the destination's
kind and host, the try's number, its queue wait and outcome: never a payload, a header, a
URL's path or query, or a credential.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from core import tracing
from db.delivery_queue import Claimed
from workers.destinations.base import Outcome

_TRACER = tracing.tracer("eventgate.worker")


@contextlib.contextmanager
def attempt_span(c: Claimed) -> Iterator[Span]:
    """The current span while one try of `c` runs (CLIENT for HTTP, PRODUCER for brokers)."""
    with _TRACER.start_as_current_span(
        f"eventgate.deliver {c.kind}",
        context=tracing.context_of(c.traceparent),
        kind=SpanKind.CLIENT if c.kind == "http" else SpanKind.PRODUCER,
        attributes=_attributes(c),
    ) as span:
        yield span


def _attributes(c: Claimed) -> dict[str, str | int | float]:
    attributes: dict[str, str | int | float] = {
        "eventgate.tenant.id": str(c.tenant_id),
        "eventgate.event.id": str(c.event_id),
        "eventgate.delivery.id": str(c.id),
        "eventgate.endpoint.id": str(c.endpoint_id),
        "eventgate.destination.kind": c.kind,
        "eventgate.attempt": c.attempts,
    }
    if c.due_at is not None:
        wait = (datetime.now(UTC) - c.due_at).total_seconds() * 1000
        attributes["eventgate.queue_wait_ms"] = round(max(wait, 0.0), 3)
    if c.event_type is not None:
        attributes["eventgate.event.type"] = c.event_type
    if c.kind == "http":
        attributes["server.address"] = urlsplit(c.url).hostname or ""
    return attributes


def record_outcome(span: Span, outcome: Outcome | None) -> None:
    """What the try gave, on its span; a failure marks the span an error."""
    if outcome is None:
        span.set_attribute("eventgate.outcome", "event_gone")
        return
    if outcome.status_code is not None:
        span.set_attribute("http.response.status_code", outcome.status_code)
    if outcome.succeeded:
        span.set_attribute("eventgate.outcome", "succeeded")
    elif outcome.cancelled:
        span.set_attribute("eventgate.outcome", "cancelled")
    else:
        span.set_attribute("eventgate.outcome", "failed")
        # The attempt's recorded error: bounded, a URL's password already masked.
        span.set_status(Status(StatusCode.ERROR, (outcome.error or "")[:200]))
