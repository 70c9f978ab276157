"""The seam every destination kind implements: a signed message in, an outcome out."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import quote, unquote, urlsplit

import msgspec

from db.delivery_queue import Claimed

T = TypeVar("T")


class Message(msgspec.Struct, frozen=True):
    """One delivery as it leaves: the webhook body and the headers that identify and sign it
    (`webhook-id`, `webhook-timestamp`, `webhook-signature`, `content-type`); a broker carries
    them as message headers or properties."""

    id: str
    body: bytes
    headers: dict[str, str]
    # An endpoint's transformation may change these for an HTTP destination.
    method: str = "POST"
    url: str | None = None


class Outcome(msgspec.Struct):
    """What one try gave. `succeeded`: the destination took the message (a 2xx, a broker's
    acknowledgement). Otherwise the try failed and is retried on the schedule, or after
    `retry_after` seconds when the destination asked; `permanent` ends the delivery at once
    (it could never succeed); `gone` asks for the endpoint to be disabled (HTTP 410);
    `cancelled`: the endpoint's transformation chose not to send it."""

    succeeded: bool
    status_code: int | None
    body: str | None
    error: str | None
    latency_ms: int
    started_at: datetime
    retry_after: float | None = None
    permanent: bool = False
    gone: bool = False
    # Nothing reached the destination (a transformation failed or cancelled the delivery): says
    # nothing of the endpoint's health.
    sent: bool = True
    cancelled: bool = False
    # What the try sent (credentials redacted) and what the answer carried, for its attempt.
    request_headers: dict[str, str] | None = None
    response_headers: dict[str, str] | None = None


class Destination(Protocol):
    """A way out for one kind: one per worker process, shared by every delivery of that
    kind. `send` never raises for anything the destination does: it returns the outcome."""

    async def send(self, delivery: Claimed, message: Message) -> Outcome:
        """Try to hand the message over once."""
        ...

    async def close(self) -> None:
        """Release connections (at worker shutdown)."""
        ...


def describe(exc: BaseException, url: str | None = None) -> str:
    """An exception as an attempt's error: its type and message, bounded, and never the
    password of `url` (a client library may quote the address it failed to reach)."""
    text = f"{type(exc).__name__}: {str(exc) or type(exc).__name__}"
    password = urlsplit(url).password if url else None
    if password:
        for written in {password, unquote(password), quote(unquote(password), safe="")}:
            text = text.replace(written, "***")
    return text[:1000]


class Try:
    """The clock of one try: when it started, and its outcome once it ends."""

    def __init__(self) -> None:
        self.started_at = datetime.now(UTC)
        self._start = time.perf_counter()

    def took_ms(self) -> int:
        """Milliseconds since the try started."""
        return round((time.perf_counter() - self._start) * 1000)

    def acknowledged(self) -> Outcome:
        """The destination took the message."""
        return Outcome(True, None, None, None, self.took_ms(), self.started_at)

    def failed(self, error: str) -> Outcome:
        """The try failed with this error (retried on the schedule)."""
        return Outcome(False, None, None, error[:1000], self.took_ms(), self.started_at)


class Connections(Generic[T]):
    """A broker kind's open connections, one per URL (credentials included), opened once
    however many deliveries ask at the same time, dropped after a failure."""

    def __init__(
        self, open_one: Callable[[str], Awaitable[T]], close_one: Callable[[T], Awaitable[Any]]
    ) -> None:
        self._open = open_one
        self._close = close_one
        self._open_ones: dict[str, T] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, url: str) -> T:
        """The connection for this URL, opened if needed."""
        found = self._open_ones.get(url)
        if found is not None:
            return found
        async with self._locks.setdefault(url, asyncio.Lock()):
            found = self._open_ones.get(url)
            if found is None:
                found = self._open_ones[url] = await self._open(url)
        return found

    async def drop(self, url: str) -> None:
        """Close and forget this URL's connection (the next try opens a new one)."""
        found = self._open_ones.pop(url, None)
        if found is not None:
            with contextlib.suppress(Exception):
                await self._close(found)

    async def close(self) -> None:
        """Close every connection."""
        for url in list(self._open_ones):
            await self.drop(url)
