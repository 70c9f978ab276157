"""Tenant schedules: every minute, fire the ticks that came due (db/schedule_runs.py)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from procrastinate import JobContext

from core.settings import Settings
from db import schedule_runs
from workers.task_runs import maintenance_task

logger = logging.getLogger("eventgate.schedules")


@maintenance_task("fire_schedules")
async def fire_schedules(context: JobContext, timestamp: int) -> int:
    """Every minute: one event and one run per due tick of every tenant schedule."""
    grace = Settings.from_env().schedule_grace_seconds
    async with context.app.connector.pool.connection() as conn:  # type: ignore[attr-defined]
        runs = await schedule_runs.fire_due(conn, datetime.now(UTC), grace)
    failed = sum(run.status == "failed" for run in runs)
    if runs:
        logger.info("schedules fired: %s runs, %s failed", len(runs), failed)
    return len(runs)
