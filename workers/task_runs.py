"""Every run of a maintenance task is recorded (db/task_runs.py): when and why it started, how
it ended, how long it took; failures are counted for the metrics and the alert rule."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from procrastinate import JobContext

from core.queues import MAINTENANCE_QUEUE
from core.tasks import TASKS
from db import task_runs
from workers.app import app

logger = logging.getLogger("eventgate.tasks")

TaskBody = Callable[[JobContext, int], Awaitable[Any]]
# Kept short: the reason is for an operator's eye, the traceback is in the worker's log.
MAX_ERROR_CHARS = 2000


def maintenance_task(name: str) -> Callable[[TaskBody], Any]:
    """Register a task of core/tasks.py: its schedule, its queue, never two at a time (unless
    the registry says otherwise), at most one waiting, and every run recorded."""
    spec = TASKS[name]
    lock = name if spec.exclusive else None

    def register(body: TaskBody) -> Any:
        @functools.wraps(body)
        async def recorded(context: JobContext, timestamp: int, manual: bool = False) -> Any:
            return await _run_recorded(body, context, timestamp, manual)

        task = app.task(
            queue=MAINTENANCE_QUEUE,
            name=name,
            pass_context=True,
            lock=lock,
            queueing_lock=name,
        )(recorded)
        return app.periodic(cron=spec.cron)(task)

    return register


async def _run_recorded(body: TaskBody, context: JobContext, timestamp: int, manual: bool) -> Any:
    pool = context.app.connector.pool  # type: ignore[attr-defined]
    name = context.task.name if context.task else "?"
    job_id = context.job.id if context.job else None
    async with pool.connection() as conn:
        run_id = await task_runs.start(conn, name, job_id, "manual" if manual else "schedule")
    started = time.monotonic()
    try:
        result = await body(context, timestamp)
    except Exception as exc:
        took = int((time.monotonic() - started) * 1000)
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        async with pool.connection() as conn:
            await task_runs.finish(conn, run_id, outcome="failed", duration_ms=took, error=error)
        raise
    took = int((time.monotonic() - started) * 1000)
    async with pool.connection() as conn:
        await task_runs.finish(conn, run_id, outcome="succeeded", duration_ms=took, result=result)
    return result
