"""GET /v1/events/stream: pending events as Server-Sent Events, resumable by Last-Event-ID.

Each message's `id` is a cursor after that event: the inbox accepts it as `cursor`, and a
stream given it as Last-Event-ID resumes in commit order exactly after that event. Events
are sent in (stream_xid, id) order and only once settled (db/event_streams.py), so an event
that commits late is never behind a position a client already holds."""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import logging
import uuid
from collections.abc import AsyncIterator

import msgspec
import psycopg
from litestar import Request
from litestar.middleware import DefineMiddleware
from litestar.response import Stream
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from psycopg_pool import AsyncConnectionPool

from app.client_ip import client_ip
from app.errors import BadRequest
from app.events.stream_hub import PAGE_SIZE, StreamHub, Subscription
from app.pagination import decode_cursor
from db import event_streams
from db.event_streams import Position

# An unsettled event waits for an older transaction to end: look again this soon.
SETTLE_RECHECK_SECONDS = 0.05
# The reconnection delay EventSource clients use (milliseconds).
RETRY_MILLISECONDS = 1000
ABANDONED = "eventgate.stream_abandoned"
logger = logging.getLogger("eventgate.streams")


def decode_stream_cursor(cursor: str) -> tuple[uuid.UUID, int | None]:
    """The event and, for a stream's own cursor, the commit position it names."""
    event_id = decode_cursor(cursor)
    assert event_id is not None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except binascii.Error as exc:  # decode_cursor already refused these
        raise BadRequest("the cursor is not valid", {"field": "cursor"}) from exc
    return event_id, int.from_bytes(raw[16:], "big") if len(raw) == 24 else None


async def start_position(
    pool: AsyncConnectionPool, tenant_id: uuid.UUID, cursor: str | None
) -> Position:
    """Where a stream starts: after the cursor's event, or at the events committed from now."""
    async with pool.connection() as conn:
        if cursor is None:
            return await event_streams.head(conn)
        event_id, xid = decode_stream_cursor(cursor)
        if xid is not None:
            return Position(xid, event_id)
        found = await event_streams.position_after(conn, tenant_id, event_id)
        return found if found is not None else await event_streams.head(conn)


def closing(reason: str) -> bytes:
    """The last message of a stream the server ends, and why."""
    return b"event: close\ndata: " + msgspec.json.encode({"reason": reason}) + b"\n\n"


async def follow(
    hub: StreamHub, subscription: Subscription, position: Position, scope: Scope
) -> AsyncIterator[bytes]:
    """The stream's messages, until the client leaves or the server ends it; the
    subscription is released however it ends."""
    try:
        yield f"retry: {RETRY_MILLISECONDS}\n: stream open\n\n".encode()
        async for chunk in _messages(hub, subscription, position, scope):
            yield chunk
        if scope.get(ABANDONED):
            subscription.close_reason = "slow_consumer"
            logger.info("stream %s abandoned: its client stopped reading", subscription.row.id)
    finally:
        await hub.release(subscription)


async def _messages(
    hub: StreamHub, subscription: Subscription, position: Position, scope: Scope
) -> AsyncIterator[bytes]:
    row, clock = subscription.row, asyncio.get_running_loop().time
    last_sent, read = clock(), True
    while not scope.get(ABANDONED):
        if subscription.close_reason is not None:
            yield closing(subscription.close_reason)
            return
        unsettled = False
        if read:
            subscription.wake.clear()
            try:
                items = await hub.page(row, position)
            except psycopg.OperationalError:  # the client resumes once the database is back
                subscription.close("database_unavailable")
                continue
            settled = list(itertools.takewhile(lambda item: item.settled, items))
            for item in settled:
                yield item.message
                position, last_sent = item.position, clock()
            if len(settled) == PAGE_SIZE:
                continue  # a backlog: the next page at once
            unsettled = len(settled) < len(items)
        if clock() - last_sent >= hub.heartbeat_seconds:
            yield b": heartbeat\n\n"  # keeps proxies from closing a quiet connection
            last_sent = clock()
        # Waiting for an older transaction: look again on a shared tick, so the streams
        # waiting for the same commit read it together. Otherwise only a commit (NOTIFY) or
        # the listener's restart brings anything new: a heartbeat reads nothing.
        tick = SETTLE_RECHECK_SECONDS - clock() % SETTLE_RECHECK_SECONDS
        wait = tick if unsettled else last_sent + hub.heartbeat_seconds - clock()
        try:
            await asyncio.wait_for(subscription.wake.wait(), max(wait, 0.0))
            read = True
        except TimeoutError:
            read = unsettled


STREAM_DESCRIPTION = (
    "Pending events (the inbox's, with its filters) as Server-Sent Events, in commit order. "
    "Each message's `id` is a cursor after its event: send it back as `Last-Event-ID` (or "
    "`cursor`) to resume exactly after it, nothing skipped or repeated; the inbox also "
    "accepts it as `cursor`. Without one the stream starts with events committed from now. "
    "Comment heartbeats when idle (15 s by default); `event: close` carries why the server "
    "ended a stream. Each `data` is the event as `GET /v1/events/{id}` shows it."
)


async def open_stream(
    request: Request, hub: StreamHub, cursor: str | None, filters: dict[str, str]
) -> Stream:
    """Check the cursor, register the stream (429 past the key's bound), and answer with it."""
    caller = request.user
    for name, value in filters.items():  # refused now: the stream's reads run after the 200
        if "\x00" in value:
            raise BadRequest(f"`{name}` holds \\u0000", {"field": name})
    position = await start_position(hub.pool, caller.tenant_id, cursor)
    address = client_ip(request.scope, request.app.state.settings.trusted_proxies)
    subscription = await hub.open(caller.tenant_id, caller.key_id, filters, address)
    return Stream(
        follow(hub, subscription, position, request.scope),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def slow_consumer_guard(app: ASGIApp, timeout_seconds: float | None = None) -> ASGIApp:
    """Abandon a stream whose client stopped reading: a body chunk not taken within the
    timeout ends it (the server holds one chunk at most, never a growing buffer), and the
    client resumes from its last id."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        timeout = timeout_seconds or scope["app"].state.settings.stream_send_timeout_seconds

        async def send_or_abandon(event: Message) -> None:
            if scope.get(ABANDONED):
                return
            if event["type"] != "http.response.body":
                await send(event)
                return
            try:
                await asyncio.wait_for(send(event), timeout)
            except TimeoutError:
                scope[ABANDONED] = "slow_consumer"  # type: ignore[literal-required]

        await app(scope, receive, send_or_abandon)

    return guarded


SLOW_CONSUMER_GUARD = DefineMiddleware(slow_consumer_guard)
