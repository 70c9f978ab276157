"""Request logs written off the request path: each API process keeps a bounded buffer that a
background task empties in one statement every second (or at 500 rows). When the database cannot take
them the rows wait; when the buffer is full the oldest are dropped and counted. Neither ever
blocks or fails a request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from datetime import UTC, datetime

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from core.metrics import REQUEST_LOGS_DROPPED
from db import partitions, request_logs
from db.request_logs import RequestLog

logger = logging.getLogger("eventgate.request_logs")


class RequestLogBuffer:
    """The rows of one API process not yet in request_logs."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        capacity: int = 10_000,
        batch: int = 500,
        every_seconds: float = 1.0,
        days_ahead: int = 7,
    ) -> None:
        self._pool = pool
        self._rows: deque[RequestLog] = deque()
        self._capacity = capacity
        self._batch = batch
        self._every = every_seconds
        self._days_ahead = days_ahead
        self._full = asyncio.Event()
        self.dropped = 0

    def add(self, row: RequestLog) -> None:
        """Keep one row (on the request path: constant time, never waits)."""
        if len(self._rows) >= self._capacity:
            self._rows.popleft()
            self._drop(1)
        self._rows.append(row)
        if len(self._rows) >= self._batch:
            self._full.set()

    def pending(self) -> int:
        """Rows not written yet."""
        return len(self._rows)

    async def run(self) -> None:
        """Write batches until cancelled (a lifespan background task)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self._every)
            self._full.clear()
            await self.flush()

    async def flush(self, timeout: float = 2.0) -> None:
        """Write what is buffered; on failure keep it (within capacity) for the next try."""
        while self._rows:
            batch = [self._rows.popleft() for _ in range(min(self._batch, len(self._rows)))]
            try:
                async with self._pool.connection(timeout=timeout) as conn:
                    await request_logs.write(conn, batch)
            except psycopg.errors.CheckViolation:  # no partition for the day yet
                self._put_back(batch)
                await self._create_partitions()
                return
            except (psycopg.Error, PoolTimeout, OSError) as exc:
                self._put_back(batch)
                logger.warning("request logs wait for the database: %s", exc)
                return

    def _put_back(self, batch: list[RequestLog]) -> None:
        room = max(0, self._capacity - len(self._rows))
        kept = batch[-room:] if room else []
        self._drop(len(batch) - len(kept))
        self._rows.extendleft(reversed(kept))

    def _drop(self, count: int) -> None:
        if count:
            self.dropped += count
            REQUEST_LOGS_DROPPED.inc(count)

    async def _create_partitions(self) -> None:
        with contextlib.suppress(psycopg.Error, OSError):
            async with self._pool.connection(timeout=2.0) as conn:
                today = datetime.now(UTC).date()
                await partitions.create_ahead(conn, "request_logs", today, self._days_ahead)
