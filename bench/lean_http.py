"""A lean HTTP/1.1 client for offering load: JSON POSTs over keep-alive connections, each
request encoded by hand.

A load generator shares the machine with what it measures: aiohttp's client spent about a
sixth of the machine's CPU offering the sustained bench's rates. This one (the answer parsed by
httptools, the parser uvicorn serves with) leaves more of the cores to the system under test,
as clients on other machines would.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import httptools


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer parsed by httptools."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.body = bytearray()
        self.waiting: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_exception(ConnectionError("the server closed the connection"))

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.waiting is not None and not self.waiting.done():
                self.waiting.set_exception(exc)

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.closed = self.closed or not self.parser.should_keep_alive()
        answer = (self.parser.get_status_code(), bytes(self.body))
        self.body.clear()
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_result(answer)

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send one request and wait for its answer."""
        assert self.transport is not None
        if self.closed or self.transport.is_closing():
            raise ConnectionError("the server closed the connection")
        self.waiting = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        try:
            return await self.waiting
        finally:
            self.waiting = None


class LeanClient:
    """JSON POSTs to one URL with fixed headers, over at most `limit` connections."""

    def __init__(self, url: str, headers: dict[str, str], limit: int = 1000) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        fixed = {"Host": parts.netloc, "Content-Type": "application/json", **headers}
        lines = "".join(f"{name}: {value}\r\n" for name, value in fixed.items())
        self.head = f"POST {parts.path or '/'} HTTP/1.1\r\n{lines}".encode()
        self.idle: list[_Connection] = []
        self.slots = asyncio.Semaphore(limit)

    async def post(self, body: object) -> tuple[int, bytes]:
        """POST `body` as JSON; the answer's status and body."""
        payload = json.dumps(body, separators=(",", ":")).encode()
        request = self.head + b"Content-Length: %d\r\n\r\n" % len(payload) + payload
        async with self.slots:
            connection = await self._connection()
            try:
                answer = await connection.exchange(request)
            except BaseException:
                self._close(connection)
                raise
            if connection.closed:
                self._close(connection)
            else:
                self.idle.append(connection)
            return answer

    async def _connection(self) -> _Connection:
        """An idle connection the server has not closed (it closes those idle a few seconds),
        or a new one."""
        while self.idle:
            connection = self.idle.pop()
            if not connection.closed:
                return connection
            self._close(connection)
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(_Connection, self.host, self.port)
        return connection

    def _close(self, connection: _Connection) -> None:
        if connection.transport is not None:
            connection.transport.close()

    def close(self) -> None:
        """Close every idle connection."""
        while self.idle:
            self._close(self.idle.pop())
