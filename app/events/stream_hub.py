"""The streams one API process serves: their registry rows, wake-ups and closing reasons.

Ingest NOTIFYs a tenant's id when it commits pending events and the tenant has a stream
(db/events.py); the process's one LISTEN connection (app/invalidation.py) hands it here, and
it wakes that tenant's streams, those at the same place sharing one read. Nothing is polled
per client: a stream otherwise wakes only for its heartbeat, which reads nothing."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import uuid

import msgspec
import psycopg
from psycopg_pool import AsyncConnectionPool

from app.errors import RateLimited
from app.events.schemas import EventView
from app.invalidation import InvalidationListener
from app.views import to_view
from core.metrics import EVENT_STREAM_READS, EVENT_STREAMS_CLOSED, EVENT_STREAMS_OPEN
from core.queues import EVENTS_STREAM_CHANNEL
from core.settings import Settings
from db import event_streams
from db.event_streams import OpenStream, Position, StreamedEvent
from db.ids import new_id

logger = logging.getLogger("eventgate.streams")
PAGE_SIZE = 100


class Outgoing:
    """A streamed event as every stream that read it sends it, encoded once."""

    __slots__ = ("message", "position", "settled")

    def __init__(self, item: StreamedEvent) -> None:
        self.settled = item.settled
        self.position = Position(item.xid, item.event.id)
        data = msgspec.json.encode(to_view(item.event, EventView))
        cursor = encode_stream_cursor(item.event.id, item.xid)
        # JSON holds no raw newline: one data line.
        self.message = b"id: " + cursor.encode() + b"\ndata: " + data + b"\n\n"


def encode_stream_cursor(event_id: uuid.UUID, xid: int) -> str:
    """The cursor after an event: its id (what the inbox reads) and its commit position."""
    raw = event_id.bytes + xid.to_bytes(8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Subscription:
    """One open stream: its row, the flag that wakes it and why it must close, if it must."""

    def __init__(self, row: OpenStream) -> None:
        self.row = row
        self.wake = asyncio.Event()
        self.close_reason: str | None = None

    def close(self, reason: str) -> None:
        """Ask the stream to end, telling its client why."""
        self.close_reason = reason
        self.wake.set()


class StreamHub:
    """Registers, wakes and heartbeats the streams of this process."""

    def __init__(
        self, pool: AsyncConnectionPool, listener: InvalidationListener, settings: Settings
    ) -> None:
        self.pool = pool
        self.heartbeat_seconds = settings.stream_heartbeat_seconds
        self._max_per_key = settings.stream_max_per_key
        self._open: dict[uuid.UUID, Subscription] = {}
        self._reads: dict[tuple, tuple[float, asyncio.Future[list[Outgoing]]]] = {}
        # When each tenant's last commit was announced (a read started before it is stale).
        self._notified: dict[str, float] = {}
        self._reset_at = 0.0
        self._by_tenant: dict[str, set[Subscription]] = {}
        self._forgetting: set[asyncio.Future[None]] = set()
        listener.subscribe(EVENTS_STREAM_CHANNEL, self._on_events, self._wake_all)

    def _on_events(self, tenant_id: str) -> None:
        if tenant_id in self._by_tenant:
            self._notified[tenant_id] = asyncio.get_running_loop().time()
        for subscription in self._by_tenant.get(tenant_id, ()):
            subscription.wake.set()

    def _wake_all(self) -> None:
        # The listener (re)started or stopped: a notification may have been missed.
        self._reset_at = asyncio.get_running_loop().time()
        for subscription in self._open.values():
            subscription.wake.set()

    async def open(
        self,
        tenant_id: uuid.UUID,
        key_id: uuid.UUID,
        filters: dict[str, str],
        client_address: str | None,
    ) -> Subscription:
        """Register a stream (release it when it ends); RateLimited when the key already has
        its maximum of open streams, in any process."""
        row = OpenStream(new_id(), tenant_id, key_id, filters, client_address)
        async with self.pool.connection() as conn, conn.transaction():
            opened = await event_streams.open_stream(
                conn, row.id, tenant_id, key_id, filters, client_address, self._max_per_key
            )
        if not opened:
            message = f"this key already has {self._max_per_key} open streams"
            raise RateLimited(message, {"max_streams": self._max_per_key}, {"Retry-After": "5"})
        subscription = Subscription(row)
        self._open[row.id] = subscription
        self._by_tenant.setdefault(str(tenant_id), set()).add(subscription)
        EVENT_STREAMS_OPEN.inc()
        return subscription

    async def release(self, subscription: Subscription) -> None:
        """Forget a stream that ended, counting why it did."""
        if self._open.pop(subscription.row.id, None) is None:
            return
        EVENT_STREAMS_OPEN.dec()
        EVENT_STREAMS_CLOSED.labels(subscription.close_reason or "client").inc()
        tenant = str(subscription.row.tenant_id)
        self._by_tenant[tenant].discard(subscription)
        if not self._by_tenant[tenant]:
            del self._by_tenant[tenant]
            self._notified.pop(tenant, None)
        # A client's disconnect cancels the response, and every await after it: the DELETE
        # runs as its own task, which that cancellation cannot reach.
        forget = asyncio.ensure_future(self._forget(subscription.row))
        self._forgetting.add(forget)
        forget.add_done_callback(self._forgetting.discard)
        await asyncio.shield(forget)

    async def _forget(self, row: OpenStream) -> None:
        with contextlib.suppress(psycopg.Error):  # a row left behind goes stale by itself
            async with self.pool.connection() as conn:
                await event_streams.close_stream(conn, row)

    async def page(self, row: OpenStream, position: Position) -> list[Outgoing]:
        """The next page after `position`. Streams of a tenant woken by the same commit at
        the same position with the same filters share one read (a tenant's thousand live
        streams cost one query per wake-up, not a thousand); a read that started before the
        tenant's latest announced commit may miss it, so it is never shared."""
        key = (row.tenant_id, position, tuple(sorted(row.filters.items())))
        shared = self._reads.get(key)
        fresh_from = max(self._notified.get(str(row.tenant_id), 0.0), self._reset_at)
        if shared is None or shared[0] <= fresh_from:
            read = asyncio.ensure_future(self._read(row, position))
            shared = (asyncio.get_running_loop().time(), read)
            self._reads[key] = shared
            read.add_done_callback(lambda _: self._forget_read(key, read))
        # Shielded: one reader leaving (its client went away) never cancels the others' read.
        return await asyncio.shield(shared[1])

    def _forget_read(self, key: tuple, read: asyncio.Future[list[Outgoing]]) -> None:
        if key in self._reads and self._reads[key][1] is read:
            del self._reads[key]

    async def _read(self, row: OpenStream, position: Position) -> list[Outgoing]:
        EVENT_STREAM_READS.inc()
        async with self.pool.connection() as conn:  # held for the read only, never while sending
            items = await event_streams.page(conn, row.tenant_id, position, row.filters, PAGE_SIZE)
        return [Outgoing(item) for item in items]

    def close_all(self, reason: str) -> None:
        """Ask every stream of this process to end (the process is stopping)."""
        for subscription in list(self._open.values()):
            subscription.close(reason)

    async def heartbeat_every(self) -> None:
        """Keep this process's stream rows fresh and close streams whose key stopped working."""
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                await self.heartbeat()
            except psycopg.Error as exc:
                logger.warning("stream heartbeat failed: %s", exc)

    async def heartbeat(self) -> None:
        """One refresh: rows seen now, stale rows of dead processes removed, revoked keys'
        streams closed."""
        rows = [subscription.row for subscription in self._open.values()]
        async with self.pool.connection() as conn:
            unusable = await event_streams.heartbeat(conn, rows) if rows else set()
            await event_streams.forget_stale(conn)
        for stream_id in unusable:
            if (subscription := self._open.get(stream_id)) is not None:
                subscription.close("key_revoked")
