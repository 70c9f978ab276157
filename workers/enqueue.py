"""Waking the workers from outside them: the one module app/ imports from workers/."""

from __future__ import annotations

from collections.abc import Iterable

from psycopg import AsyncConnection

from db import delivery_queue


async def wake(conn: AsyncConnection, queues: Iterable[str]) -> None:
    """Have the workers of these queues claim what is due once the caller's transaction
    commits (NOTIFY: no job is created and no lock waited on). A lost notification costs at
    most one poll interval (EVENTGATE_DELIVERY_POLL_SECONDS); a lost database is a
    psycopg.OperationalError, as everywhere else (answered 503)."""
    await delivery_queue.announce_due(conn, sorted(set(queues)))
