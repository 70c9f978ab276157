"""Where heavy reads go: the read replica (EVENTGATE_READ_DATABASE_URL) while it is fresh
enough, else the primary.

Its freshness is checked at most once a second (one query on the replica, shared by every
request meanwhile); a replica that lags more than EVENTGATE_READ_MAX_LAG_SECONDS, is not
streaming, or does not answer is bypassed until a check finds it fresh again.
"""

from __future__ import annotations

import asyncio
import logging
import time

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from db import replication

logger = logging.getLogger("eventgate.replica")
CHECK_EVERY_SECONDS = 1.0


class ReplicaReads:
    """The pool a heavy read takes its connection from."""

    def __init__(
        self,
        primary: AsyncConnectionPool,
        replica: AsyncConnectionPool | None,
        max_lag_seconds: float,
    ) -> None:
        self._primary = primary
        self._replica = replica
        self._max_lag = max_lag_seconds
        self._fresh = False
        self._checked_at = -CHECK_EVERY_SECONDS
        self._lock = asyncio.Lock()

    async def pool(self) -> AsyncConnectionPool:
        """The replica's pool if it is fresh enough now, else the primary's."""
        if self._replica is None:
            return self._primary
        if time.monotonic() - self._checked_at >= CHECK_EVERY_SECONDS:
            async with self._lock:  # one check at a time; the others use its result
                if time.monotonic() - self._checked_at >= CHECK_EVERY_SECONDS:
                    self._fresh = await self._check(self._replica)
                    self._checked_at = time.monotonic()
        return self._replica if self._fresh else self._primary

    async def _check(self, replica: AsyncConnectionPool) -> bool:
        try:
            async with replica.connection(timeout=1.0) as conn:
                lag = await replication.staleness_seconds(conn)
        except (psycopg.Error, PoolTimeout, OSError) as exc:
            logger.warning("the read replica does not answer; reading from the primary: %s", exc)
            return False
        fresh = lag is not None and lag <= self._max_lag
        if not fresh and self._fresh:
            logger.warning("the read replica lags (%s s); reading from the primary", lag)
        return fresh
