"""Reaching the workers from outside them (waking them, running a task by hand): the one
module app/ imports from workers/."""

from __future__ import annotations

import time
from collections.abc import Iterable

from procrastinate import App, PsycopgConnector
from procrastinate.exceptions import AlreadyEnqueued
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from core.queues import MAINTENANCE_QUEUE
from core.tasks import TASKS
from db import delivery_queue, task_runs


async def wake(conn: AsyncConnection, queues: Iterable[str]) -> None:
    """Have the workers of these queues claim what is due once the caller's transaction
    commits (NOTIFY: no job is created and no lock waited on). A lost notification costs at
    most one poll interval (EVENTGATE_DELIVERY_POLL_SECONDS); a lost database is a
    psycopg.OperationalError, as everywhere else (answered 503)."""
    await delivery_queue.announce_due(conn, sorted(set(queues)))


class TaskBusy(Exception):
    """A run of the task is in the queue already (running or waiting): no second one."""


async def run_task(pool: AsyncConnectionPool, name: str) -> int:
    """Queue a maintenance task of the registry by hand; returns its job id. Refused
    (TaskBusy) while a job of the same task runs or waits: its queueing lock refuses a second
    waiting job, and its lock would only make one wait behind the other."""
    async with pool.connection() as conn:
        state = await task_runs.queued(conn, name)
    if state is not None:
        raise TaskBusy("running now" if state == "doing" else "already waiting to run")
    deferrer = App(connector=PsycopgConnector())
    async with deferrer.open_async(pool):
        spec = TASKS[name]
        task = deferrer.configure_task(
            name,
            queue=MAINTENANCE_QUEUE,
            lock=name if spec.exclusive else None,
            queueing_lock=name,
        )
        try:
            return await task.defer_async(timestamp=int(time.time()), manual=True)
        except AlreadyEnqueued as exc:
            raise TaskBusy("already waiting to run") from exc
