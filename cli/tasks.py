"""`eventgate tasks`: the periodic maintenance tasks, their runs, and running one by hand."""

from __future__ import annotations

import argparse
from datetime import datetime

import psycopg
from psycopg_pool import AsyncConnectionPool

from core.tasks import MAINTENANCE_TASKS, TASKS
from db import task_runs
from workers.enqueue import TaskBusy, run_task


def _at(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _took(duration_ms: int | None) -> str:
    return f"{duration_ms} ms" if duration_ms is not None else "-"


def _known(name: str) -> str:
    if name not in TASKS:
        raise SystemExit(f"eventgate: no task {name!r}; `eventgate tasks list` names them")
    return name


async def list_tasks(url: str, args: argparse.Namespace) -> None:
    """One line per task: schedule, last run, its outcome and duration, next run, failures."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        states = {s.task: s for s in await task_runs.states(conn, list(TASKS))}
    print(
        f"{'TASK':<20} {'SCHEDULE':<14} {'LAST RUN (UTC)':<20} {'OUTCOME':<10} "
        f"{'DURATION':<10} {'NEXT RUN (UTC)':<20} FAILURES"
    )
    for spec in MAINTENANCE_TASKS:
        state = states[spec.name]
        outcome = "running" if state.queued == "doing" else (state.last_outcome or "-")
        print(
            f"{spec.name:<20} {spec.cron:<14} {_at(state.last_started_at):<20} {outcome:<10} "
            f"{_took(state.last_duration_ms):<10} {_at(spec.next_run()):<20} "
            f"{state.failures_total}"
        )


async def task_history(url: str, args: argparse.Namespace) -> None:
    """The newest runs of one task, newest first."""
    name = _known(args.name)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        runs = await task_runs.history(conn, name, args.limit)
    print(f"{'STARTED (UTC)':<20} {'TRIGGER':<9} {'OUTCOME':<10} {'DURATION':<10} RESULT / ERROR")
    for run in runs:
        detail = run.error if run.error else ("" if run.result is None else str(run.result))
        print(
            f"{_at(run.started_at):<20} {run.trigger:<9} {run.outcome:<10} "
            f"{_took(run.duration_ms):<10} {detail}"
        )


async def run_now(url: str, args: argparse.Namespace) -> None:
    """Queue a run now; refused while one runs or waits."""
    name = _known(args.name)
    async with AsyncConnectionPool(url, min_size=1, max_size=2, open=False) as pool:
        try:
            job_id = await run_task(pool, name)
        except TaskBusy as exc:
            raise SystemExit(f"eventgate: {name} not queued: {exc}") from None
    print(f"{name} queued as job {job_id}; a worker serving the maintenance queue runs it")


ACTIONS = {"list": list_tasks, "history": task_history, "run": run_now}
