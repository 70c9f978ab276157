"""The maintenance task registry as the console's Jobs page shows it: each task's schedule,
last run and outcome, next run and failures; its history; a run by hand (admin keys)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from app.audit import record
from app.errors import Conflict, NotFound
from core.tasks import MAINTENANCE_TASKS, TASKS
from db import task_runs
from workers.enqueue import TaskBusy, run_task


class JobView(task_runs.TaskState, kw_only=True):
    """One maintenance task of the registry and where it stands: its last run (succeeded,
    failed, lost with its worker, or running while a job of it runs), totals and queue."""

    cron: str
    description: str
    next_run_at: datetime


async def overview(conn: AsyncConnection) -> list[JobView]:
    """Every task of the registry, in its order."""
    states = {s.task: s for s in await task_runs.states(conn, list(TASKS))}
    views = []
    for spec in MAINTENANCE_TASKS:
        state = msgspec.structs.asdict(states[spec.name])
        if state["queued"] == "doing":
            state["last_outcome"] = "running"
        views.append(
            JobView(
                **state, cron=spec.cron, description=spec.description, next_run_at=spec.next_run()
            )
        )
    return views


def spec_of(name: str) -> Any:
    """The registry's task of this name, or NotFound."""
    if name not in TASKS:
        raise NotFound("no such task")
    return TASKS[name]


async def history(conn: AsyncConnection, name: str) -> list[task_runs.TaskRun]:
    """The newest runs of one task."""
    spec_of(name)
    return await task_runs.history(conn, name, 100)


async def run_now(pool: AsyncConnectionPool, tenant_id: uuid.UUID, name: str) -> int:
    """Queue a run of a task; Conflict while one runs or waits. Audited in the tenant's log."""
    spec_of(name)
    try:
        job_id = await run_task(pool, name)
    except TaskBusy as exc:
        raise Conflict(f"{name} is {exc}: no second run is queued") from exc
    async with pool.connection() as conn, conn.transaction():
        await record(conn, tenant_id, "task.run", "task", name, after={"job_id": job_id})
    return job_id
