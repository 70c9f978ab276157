"""The two clients: every generated operation, plus the live event stream."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from eventgate_client._generated import AsyncOperations, EventView, SyncOperations
from eventgate_client._transport import AsyncTransport, SyncTransport, _Config, retry_after
from eventgate_client.errors import EventgateError, error_from

STREAM_PATH = "/v1/events/stream"
# Server closes after which a client reconnects; others (a revoked key) end the iteration.
RESUMABLE_CLOSES = frozenset({"shutdown", "slow_consumer", "database_unavailable"})
RECONNECT_WAIT = 1.0


@dataclass(frozen=True)
class StreamedEvent:
    """One event of the stream; `id` resumes the stream (and pages the inbox) after it."""

    id: str
    event: EventView


class StreamClosed(EventgateError):
    """The server ended the stream for a reason a reconnect cannot fix (a revoked key)."""


class _StreamState:
    """Parses SSE lines and remembers where to resume."""

    def __init__(self, last_event_id: str | None, config: _Config) -> None:
        self.last_event_id = last_event_id
        self._config = config
        self._fields: dict[str, str] = {}
        self.refusals = 0  # connections refused in a row

    def refused(self, response: httpx.Response) -> float:
        """How long to wait after a refused connection: a 429 or a 503 (the database away)
        waits what it says, at most max_retries times in a row; anything else raises."""
        if not self._config.should_retry(response, self.refusals):
            raise error_from(response)
        wait = retry_after(response, self.refusals, self._config.max_retry_wait)
        self.refusals += 1
        return wait

    def headers(self) -> dict[str, str]:
        """The key's headers, and where to resume."""
        resume = {"Last-Event-ID": self.last_event_id} if self.last_event_id else {}
        return {**self._config.headers, **resume}

    def feed(self, line: str) -> StreamedEvent | str | None:
        """A whole event, a close reason, or None while a message is incomplete."""
        if line:
            if not line.startswith(":"):
                name, _, value = line.partition(":")
                self._fields[name] = self._fields.get(name, "") + value.removeprefix(" ")
            return None
        fields, self._fields = self._fields, {}
        if fields.get("event") == "close":
            return str(json.loads(fields.get("data", "{}")).get("reason", "closed"))
        if "data" not in fields or "id" not in fields:
            return None
        self.last_event_id = fields["id"]
        return StreamedEvent(fields["id"], json.loads(fields["data"]))


def _stream_query(source: str | None, event_type: str | None, channel: str | None) -> dict:
    query = {"source": source, "event_type": event_type, "channel": channel}
    return {name: value for name, value in query.items() if value is not None}


def _closed(reason: str) -> StreamClosed:
    return StreamClosed(200, "stream_closed", f"the server ended the stream: {reason}")


class Client(SyncOperations):
    """Eventgate's API, blocking. Every operation is a method named as in the OpenAPI
    document (`ingest_event`, `list_inbox`...); paged lists also have `iter_*`."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_retry_wait: float = 60.0,
        http: httpx.Client | None = None,
    ) -> None:
        config = _Config(base_url, api_key, timeout, max_retries, max_retry_wait)
        self._transport = SyncTransport(config, http)

    def close(self) -> None:
        """Close the connections."""
        self._transport.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stream_events(
        self,
        *,
        source: str | None = None,
        event_type: str | None = None,
        channel: str | None = None,
        last_event_id: str | None = None,
    ) -> Iterator[StreamedEvent]:
        """Follow pending events live (GET /v1/events/stream), reconnecting after a lost
        connection from the last event received: each event once, in commit order."""
        state = _StreamState(last_event_id, self._transport.config)
        query = _stream_query(source, event_type, channel)
        http = self._transport.http

        while True:
            wait = RECONNECT_WAIT
            try:
                with http.stream(
                    "GET", STREAM_PATH, params=query, headers=state.headers(), timeout=None
                ) as response:
                    if response.is_error:
                        response.read()
                        wait = state.refused(response)
                    else:
                        state.refusals = 0
                        for item in map(state.feed, _lines(response.iter_lines())):
                            if isinstance(item, str) and item not in RESUMABLE_CLOSES:
                                raise _closed(item)
                            if isinstance(item, StreamedEvent):
                                yield item
            except httpx.TransportError:
                pass
            time.sleep(wait)


def _lines(lines: Iterable[str]) -> Iterator[str]:
    for line in lines:
        yield line.rstrip("\r")


class AsyncClient(AsyncOperations):
    """Eventgate's API for asyncio; the same methods as Client, awaited."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_retry_wait: float = 60.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        config = _Config(base_url, api_key, timeout, max_retries, max_retry_wait)
        self._transport = AsyncTransport(config, http)

    async def aclose(self) -> None:
        """Close the connections."""
        await self._transport.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def stream_events(
        self,
        *,
        source: str | None = None,
        event_type: str | None = None,
        channel: str | None = None,
        last_event_id: str | None = None,
    ) -> AsyncIterator[StreamedEvent]:
        """Follow pending events live, as Client.stream_events does."""
        state = _StreamState(last_event_id, self._transport.config)
        query: dict[str, Any] = _stream_query(source, event_type, channel)
        http = self._transport.http

        while True:
            wait = RECONNECT_WAIT
            try:
                async with http.stream(
                    "GET", STREAM_PATH, params=query, headers=state.headers(), timeout=None
                ) as response:
                    if response.is_error:
                        await response.aread()
                        wait = state.refused(response)
                    else:
                        state.refusals = 0
                        async for line in response.aiter_lines():
                            item = state.feed(line.rstrip("\r"))
                            if isinstance(item, str) and item not in RESUMABLE_CLOSES:
                                raise _closed(item)
                            if isinstance(item, StreamedEvent):
                                yield item
            except httpx.TransportError:
                pass
            await asyncio.sleep(wait)
