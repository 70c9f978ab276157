"""The task registry: every periodic task is scheduled from core/tasks.py, each run is recorded
with its trigger, outcome and duration, `eventgate tasks` lists, shows and runs them (refused
while the same task runs or waits), and failures reach the metrics."""

from __future__ import annotations

import asyncio
import os
import re

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from core.tasks import MAINTENANCE_TASKS, TASKS
from tests.cli.test_cli import eventgate
from tests.helpers import ROOT, wait_for
from workers.app import app as worker_app
from workers.enqueue import TaskBusy, run_task


def cli(database_url: str, *args: str):
    env = {**os.environ, "EVENTGATE_DATABASE_URL": database_url}
    return eventgate("tasks", *args, env=env, cwd=ROOT)


def task_rows(url: str) -> list[tuple]:
    """The runs started by hand (a worker starting also defers each task's latest tick)."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT task, trigger, outcome, duration_ms IS NOT NULL, error FROM task_runs"
            " WHERE trigger = 'manual' ORDER BY id"
        ).fetchall()


async def work_maintenance() -> None:
    """A real worker runs what the maintenance queue holds, then stops; again while a job is
    left waiting (its periodic deferrer can add a tick's job as the worker finds the queue
    empty, which would refuse a run by hand)."""
    async with worker_app.open_async():
        for _ in range(5):
            await worker_app.run_worker_async(
                wait=False, install_signal_handlers=False, queues=["maintenance"]
            )
            waiting = await worker_app.job_manager.list_jobs_async(
                queue="maintenance", status="todo"
            )
            if not list(waiting):
                return


def test_the_worker_schedules_exactly_the_registry():
    worker_app.perform_import_paths()
    periodic = {
        task.task.name: task.cron for task in worker_app.periodic_registry.periodic_tasks.values()
    }
    assert periodic == {spec.name: spec.cron for spec in MAINTENANCE_TASKS}
    for spec in MAINTENANCE_TASKS:
        task = worker_app.tasks[spec.name]
        assert task.queueing_lock == spec.name
        assert task.lock == (spec.name if spec.exclusive else None)


async def test_a_run_by_hand_is_recorded_listed_and_never_queued_twice(database_url, worker_env):
    async with AsyncConnectionPool(database_url, min_size=1, open=False) as pool:
        await run_task(pool, "purge_rate_windows")
        with pytest.raises(TaskBusy, match="waiting"):
            await run_task(pool, "purge_rate_windows")
    refused = cli(database_url, "run", "purge_rate_windows")
    assert refused.returncode != 0
    assert "already waiting" in refused.stderr
    await work_maintenance()
    assert task_rows(database_url) == [("purge_rate_windows", "manual", "succeeded", True, None)]

    queued = cli(database_url, "run", "purge_expired")
    assert queued.returncode == 0, queued.stderr
    await work_maintenance()
    listed = cli(database_url, "list")
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert set(lines) == set(TASKS)
    assert "succeeded" in lines["purge_expired"]
    assert "*/15 * * * *" in lines["purge_expired"]
    assert {line.split()[-1] for line in lines.values()} == {"0"}  # no failures
    history = cli(database_url, "history", "purge_expired")
    assert "manual" in history.stdout
    assert "succeeded" in history.stdout
    unknown = cli(database_url, "run", "drop_everything")
    assert unknown.returncode != 0
    assert "no task 'drop_everything'" in unknown.stderr


async def test_a_running_task_refuses_a_second_run(database_url, worker_env):
    # Rotation takes the partitions lock: holding it keeps a real run of it in progress.
    with psycopg.connect(database_url) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtext('eventgate_partitions'))")
        async with AsyncConnectionPool(database_url, min_size=1, open=False) as pool:
            await run_task(pool, "rotate_partitions")
            worker = asyncio.create_task(work_maintenance())

            async def running() -> bool:
                async with pool.connection() as conn:
                    cursor = await conn.execute(
                        "SELECT 1 FROM procrastinate_jobs WHERE status = 'doing'"
                    )
                    return await cursor.fetchone() is not None

            await wait_for(running)
            with pytest.raises(TaskBusy, match="running now"):
                await run_task(pool, "rotate_partitions")
            listed = cli(database_url, "list")
            assert "running" in next(
                line for line in listed.stdout.splitlines() if line.startswith("rotate_partitions")
            )
            holder.execute("SELECT pg_advisory_unlock(hashtext('eventgate_partitions'))")
            await asyncio.wait_for(worker, timeout=30)
    assert task_rows(database_url) == [("rotate_partitions", "manual", "succeeded", True, None)]


async def test_a_failing_task_is_recorded_and_counted_in_the_metrics(
    client, database_url, worker_env
):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE endpoint_rate_windows")  # the task's table is gone
    async with AsyncConnectionPool(database_url, min_size=1, open=False) as pool:
        await run_task(pool, "purge_rate_windows")
    await work_maintenance()
    ((task, trigger, outcome, timed, error),) = task_rows(database_url)
    assert (task, trigger, outcome, timed) == ("purge_rate_windows", "manual", "failed", True)
    assert "endpoint_rate_windows" in error
    history = cli(database_url, "history", "purge_rate_windows")
    assert "failed" in history.stdout
    assert "endpoint_rate_windows" in history.stdout
    metrics = (await client.get("/metrics")).text
    # The run by hand failed, and so did the one the worker deferred for the current minute.
    failures = re.search(
        r'eventgate_task_failures_total\{task="purge_rate_windows"\} (\S+)', metrics
    )
    assert float(failures.group(1)) >= 1
    assert 'eventgate_task_failures_total{task="purge_expired"} 0.0' in metrics
    assert 'eventgate_task_last_success_timestamp_seconds{task="purge_rate_windows"} 0.0' in metrics
    assert 'eventgate_task_period_seconds{task="rotate_partitions"} 900.0' in metrics
