"""Deferring work from outside the workers: the one module app/ imports from workers/.

Jobs are deferred on the caller's connection, inside its transaction, so they commit (and
wake a worker by NOTIFY) together with the rows they work on, or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
from procrastinate.exceptions import AlreadyEnqueued, ConnectorException
from psycopg import AsyncConnection

from core.queues import DELIVER_TASK, JOB_PRIORITY, queueing_lock
from workers.app import app


async def wake(conn: AsyncConnection, queues: Iterable[str]) -> None:
    """Make sure a deliver job waits for each queue, inside the caller's transaction; a lost
    database is a psycopg.OperationalError, as everywhere else (answered 503)."""
    try:
        await _defer_deliver_jobs(conn, queues)
    except ConnectorException as exc:
        if isinstance(exc.__cause__, psycopg.OperationalError):
            raise exc.__cause__ from exc
        raise


async def _defer_deliver_jobs(conn: AsyncConnection, queues: Iterable[str]) -> None:
    for queue in queues:
        try:
            # A savepoint: a queueing-lock clash must not abort the caller's transaction.
            async with conn.transaction():
                await app.configure_task(
                    DELIVER_TASK,
                    connection=conn,
                    queue=queue,
                    queueing_lock=queueing_lock(queue),
                    priority=JOB_PRIORITY[queue],
                ).defer_async(queue=queue)
        except AlreadyEnqueued:
            pass  # a waiting job will claim these deliveries too
