"""Deferring work from outside the workers: the one module app/ imports from workers/.

Jobs are deferred on the caller's connection, inside its transaction, so they commit (and
wake a worker by NOTIFY) together with the rows they work on, or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable

from procrastinate.exceptions import AlreadyEnqueued
from psycopg import AsyncConnection

from core.queues import DELIVER_TASK, JOB_PRIORITY, queueing_lock
from workers.app import app


async def wake(conn: AsyncConnection, queues: Iterable[str]) -> None:
    """Make sure a deliver job waits for each queue, inside the caller's transaction."""
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
