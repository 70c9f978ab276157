"""The seam every destination kind implements: a signed message in, an outcome out."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import msgspec

from db.delivery_queue import Claimed


class Message(msgspec.Struct, frozen=True):
    """One delivery as it leaves: the webhook body and the headers that identify and sign it
    (`webhook-id`, `webhook-timestamp`, `webhook-signature`, `content-type`); a broker carries
    them as message headers or properties."""

    id: str
    body: bytes
    headers: dict[str, str]


class Outcome(msgspec.Struct):
    """What one try gave. `succeeded`: the destination took the message (a 2xx, a broker's
    acknowledgement). Otherwise the try failed and is retried on the schedule, or after
    `retry_after` seconds when the destination asked; `permanent` ends the delivery at once
    (it could never succeed); `gone` asks for the endpoint to be disabled (HTTP 410)."""

    succeeded: bool
    status_code: int | None
    body: str | None
    error: str | None
    latency_ms: int
    started_at: datetime
    retry_after: float | None = None
    permanent: bool = False
    gone: bool = False


class Destination(Protocol):
    """A way out for one kind: one per worker process, shared by every delivery of that
    kind. `send` never raises for anything the destination does: it returns the outcome."""

    async def send(self, delivery: Claimed, message: Message) -> Outcome:
        """Try to hand the message over once."""
        ...

    async def close(self) -> None:
        """Release connections (at worker shutdown)."""
        ...
