"""A plain Server-Sent Events reader for tests: one stream, its messages gathered as they come."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Message:
    """One SSE message (or comment block)."""

    id: str | None = None
    event: str | None = None
    data: str = ""
    comments: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.data)


class Stream:
    """An open stream: `messages` grows as messages arrive; `ended` once the server closed it."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.status: int | None = None
        self.ended = asyncio.Event()
        self.opened = asyncio.Event()
        self.body: str = ""

    @property
    def events(self) -> list[Message]:
        """The messages that carry an event (not comments, not `close`)."""
        return [m for m in self.messages if m.event is None and m.data]

    @property
    def last_id(self) -> str | None:
        ids = [m.id for m in self.messages if m.id]
        return ids[-1] if ids else None

    async def wait_events(self, count: int, timeout: float = 20.0) -> list[Message]:
        """Wait until at least `count` events arrived."""
        async with asyncio.timeout(timeout):
            while len(self.events) < count:
                await asyncio.sleep(0.02)
        return self.events

    async def read(self, response: httpx.Response) -> None:
        current = Message()
        async for line in response.aiter_lines():
            if line == "":
                if current.data or current.event or current.comments:
                    self.messages.append(current)
                current = Message()
            elif line.startswith(":"):
                current.comments.append(line[1:].strip())
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "id":
                    current.id = value
                elif name == "event":
                    current.event = value
                elif name == "data":
                    current.data += value


@contextlib.asynccontextmanager
async def open_stream(
    base: str, key: str, last_event_id: str | None = None, **params: str
) -> AsyncIterator[Stream]:
    """Follow GET /v1/events/stream until the block ends."""
    stream = Stream()
    headers = {"X-API-Key": key}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id

    async def run() -> None:
        try:
            async with (
                httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(30, read=None)) as http,
                http.stream("GET", "/v1/events/stream", headers=headers, params=params) as r,
            ):
                stream.status = r.status_code
                stream.opened.set()
                if r.status_code != 200:
                    stream.body = (await r.aread()).decode()
                    return
                await stream.read(r)
        except httpx.TransportError:
            pass
        finally:
            stream.opened.set()
            stream.ended.set()

    task = asyncio.create_task(run())
    try:
        await asyncio.wait_for(stream.opened.wait(), 20)
        yield stream
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
