"""SQL for the record of maintenance task runs (task_runs, task_totals) and for what
procrastinate's queue says about a task right now."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from db.ids import first_id_at, new_id
from db.query import fetch_all, fetch_value


class TaskState(msgspec.Struct):
    """A task's last run, its totals, and whether a job of it waits or runs now."""

    task: str
    last_started_at: datetime | None
    last_outcome: str | None
    last_duration_ms: int | None
    last_error: str | None
    runs_total: int
    failures_total: int
    last_success_at: datetime | None
    queued: str | None  # 'doing' or 'todo' when a job of the task is in the queue


class TaskRun(msgspec.Struct):
    """One task_runs row (a run whose job died with its worker shows `lost`)."""

    id: uuid.UUID
    task: str
    job_id: int | None
    trigger: str
    outcome: str
    result: Any
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None


# A job of the task waiting or running, running first (procrastinate_jobs holds few rows:
# finished jobs that succeeded are deleted).
QUEUED = """
SELECT status::text FROM procrastinate_jobs
WHERE task_name = %(task)s AND status IN ('todo', 'doing')
ORDER BY status = 'doing' DESC
LIMIT 1
"""

# Note a run starting (task_runs_pkey).
START = """
INSERT INTO task_runs (id, task, job_id, trigger) VALUES (%(id)s, %(task)s, %(job_id)s, %(trigger)s)
"""

# Note how a run ended and count it in the task's totals (task_runs_pkey, task_totals_pkey).
FINISH = """
WITH run AS (
    UPDATE task_runs SET outcome = %(outcome)s, result = %(result)s, error = %(error)s,
        finished_at = now(), duration_ms = %(duration_ms)s
    WHERE id = %(id)s
    RETURNING task, outcome
)
INSERT INTO task_totals AS t (task, runs_total, failures_total, last_success_at, last_failure_at)
SELECT task, 1, (outcome = 'failed')::int,
       CASE WHEN outcome = 'succeeded' THEN now() END,
       CASE WHEN outcome = 'failed' THEN now() END
FROM run
ON CONFLICT (task) DO UPDATE SET
    runs_total = t.runs_total + 1,
    failures_total = t.failures_total + excluded.failures_total,
    last_success_at = coalesce(excluded.last_success_at, t.last_success_at),
    last_failure_at = coalesce(excluded.last_failure_at, t.last_failure_at)
"""

# Each task's last run and totals, and its job in the queue now (task_runs_task_idx: one
# backward index step per task; task_totals_pkey).
STATES = """
SELECT t.task, r.started_at AS last_started_at,
       CASE WHEN r.outcome = 'running' AND q.status IS DISTINCT FROM 'doing' THEN 'lost'
            ELSE r.outcome END AS last_outcome,
       r.duration_ms AS last_duration_ms, r.error AS last_error,
       coalesce(s.runs_total, 0) AS runs_total, coalesce(s.failures_total, 0) AS failures_total,
       s.last_success_at, q.status AS queued
FROM unnest(%(tasks)s::text[]) AS t(task)
LEFT JOIN LATERAL (
    SELECT started_at, outcome, duration_ms, error FROM task_runs
    WHERE task = t.task ORDER BY id DESC LIMIT 1
) r ON true
LEFT JOIN task_totals s ON s.task = t.task
LEFT JOIN LATERAL (
    SELECT status::text FROM procrastinate_jobs
    WHERE task_name = t.task AND status IN ('todo', 'doing')
    ORDER BY status = 'doing' DESC
    LIMIT 1
) q(status) ON true
ORDER BY t.task
"""

# The newest runs of one task (task_runs_task_idx).
HISTORY = """
SELECT r.id, r.task, r.job_id, r.trigger,
       CASE WHEN r.outcome = 'running' AND NOT EXISTS (
           SELECT 1 FROM procrastinate_jobs j WHERE j.id = r.job_id AND j.status = 'doing')
       THEN 'lost' ELSE r.outcome END AS outcome,
       r.result, r.error, r.started_at, r.finished_at, r.duration_ms
FROM task_runs r
WHERE r.task = %(task)s
ORDER BY r.id DESC
LIMIT %(limit)s
"""

# Forget runs older than the history keeps (task_runs_pkey: ids are UUIDv7, time-ordered).
PURGE = "DELETE FROM task_runs WHERE id < %(before)s"


async def start(conn: AsyncConnection, task: str, job_id: int | None, trigger: str) -> uuid.UUID:
    """Note that a run began; returns its id."""
    run_id = new_id()
    await conn.execute(START, {"id": run_id, "task": task, "job_id": job_id, "trigger": trigger})
    return run_id


async def finish(
    conn: AsyncConnection,
    run_id: uuid.UUID,
    *,
    outcome: str,
    duration_ms: int,
    result: Any = None,
    error: str | None = None,
) -> None:
    """Note how a run ended and count it."""
    params = {
        "id": run_id,
        "outcome": outcome,
        "result": Jsonb(result),
        "error": error,
        "duration_ms": duration_ms,
    }
    await conn.execute(FINISH, params)


async def queued(conn: AsyncConnection, task: str) -> str | None:
    """'doing' when a job of the task runs now, 'todo' when one waits, else None."""
    state: str | None = await fetch_value(conn, QUEUED, {"task": task})
    return state


async def states(conn: AsyncConnection, tasks: Sequence[str]) -> list[TaskState]:
    """Each task's last run, totals and queue state, by name."""
    return await fetch_all(conn, STATES, {"tasks": list(tasks)}, TaskState)


async def history(conn: AsyncConnection, task: str, limit: int = 50) -> list[TaskRun]:
    """The newest runs of one task, newest first."""
    return await fetch_all(conn, HISTORY, {"task": task, "limit": limit}, TaskRun)


async def purge(conn: AsyncConnection, keep_days: int) -> None:
    """Forget runs older than keep_days (the totals keep counting)."""
    before = first_id_at(datetime.now(UTC) - timedelta(days=keep_days))
    await conn.execute(PURGE, {"before": before})
