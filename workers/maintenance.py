"""Periodic maintenance: partitions, re-queueing the jobs of dead workers, purges."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from procrastinate import JobContext
from procrastinate.exceptions import ProcrastinateException
from procrastinate.jobs import Status

from core.settings import Settings
from db import (
    api_keys,
    audit,
    console_sessions,
    console_users,
    delivery_stats,
    endpoints,
    idempotency,
    operational,
    partitions,
    portal_links,
    rate_limits,
    rate_windows,
    sources,
    task_runs,
)
from workers.task_runs import maintenance_task

logger = logging.getLogger("eventgate.maintenance")

# A worker whose heartbeat is older than this is considered dead (procrastinate prunes at 30 s).
STALLED_AFTER_SECONDS = 30


def retention_days(settings: Settings) -> dict[str, int]:
    """How many days each partitioned table keeps."""
    return {
        "events": settings.event_retention_days,
        "deliveries": settings.delivery_retention_days,
        "delivery_attempts": settings.delivery_retention_days,
        "request_logs": settings.request_log_retention_days,
    }


@maintenance_task("rotate_partitions")
async def rotate_partitions(context: JobContext, timestamp: int) -> dict[str, int]:
    """Create partitions ahead and drop those past retention, for every partitioned table."""
    settings = Settings.from_env()
    today = datetime.now(UTC).date()
    created = dropped = 0
    async with context.app.connector.pool.connection() as conn:  # type: ignore[attr-defined]
        keep_from = await partitions.oldest_scheduled_day(conn)
        for table, keep_days in retention_days(settings).items():
            created += await partitions.create_ahead(
                conn, table, today, settings.partitions_ahead_days
            )
            dropped += await partitions.drop_expired(conn, table, today, keep_days, keep_from)
    logger.info("partitions rotated: %s created, %s dropped", created, dropped)
    return {"created": created, "dropped": dropped}


@maintenance_task("retry_stalled_jobs")
async def retry_stalled_jobs(context: JobContext, timestamp: int) -> int:
    """Put the jobs of workers that stopped heart-beating back in the queue."""
    manager = context.app.job_manager
    retried = 0
    for job in await manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_AFTER_SECONDS):
        try:
            await manager.retry_job(job)
            retried += 1
        except ProcrastinateException as exc:
            # A sibling waiting with the same queueing lock makes the retry clash (#1446). That
            # sibling does the same work (a deliver job claims whatever is due), so end this one.
            logger.warning("stalled job %s not retried, ended as failed: %s", job.id, exc)
            await manager.finish_job_by_id_async(job.id, Status.FAILED, delete_job=False)
    return retried


@maintenance_task("purge_rate_windows")
async def purge_rate_windows(context: JobContext, timestamp: int) -> None:
    """Every minute: forget the per-second delivery counts of endpoint rate limits that ended."""
    async with context.app.connector.pool.connection() as conn:  # type: ignore[attr-defined]
        await rate_windows.purge(conn)


@maintenance_task("purge_expired")
async def purge_expired(context: JobContext, timestamp: int) -> None:
    """Forget API rate-limit counters whose window has ended, expired idempotency keys and
    trigger receipts, ended console sessions and portal links, all but the newest 100
    rejections of each source, task runs past their history, and audit entries past their
    retention (behind a checkpoint); end the deliveries of deleted endpoints left unfinished
    by a worker that died mid-send."""
    async with context.app.connector.pool.connection() as conn:  # type: ignore[attr-defined]
        await rate_limits.purge_counters(conn)
        await idempotency.purge(conn)
        await sources.purge(conn)
        await console_sessions.purge(conn)
        await console_users.purge(conn)
        await portal_links.purge(conn)
        await delivery_stats.purge(conn)
        await endpoints.end_orphaned_deliveries(conn)
        settings = Settings.from_env()
        await task_runs.purge(conn, settings.task_history_days)
        await audit.trim(conn, settings.audit_retention_days)


# Once per key: a notice about a key is not repeated within this window (longer than the
# 7 days the key has left when it is first reported).
KEY_NOTICE_WINDOW_SECONDS = 8 * 24 * 3600.0


@maintenance_task("notify_expiring_keys")
async def notify_expiring_keys(context: JobContext, timestamp: int) -> int:
    """Every hour: eventgate.api_key.expiring for each key that expires within 7 days."""
    told = 0
    async with context.app.connector.pool.connection() as conn:  # type: ignore[attr-defined]
        for key in await api_keys.expiring_soon(conn):
            notice = {
                "key_id": str(key.id),
                "name": key.name,
                "prefix": key.prefix,
                "expires_at": key.expires_at.isoformat() if key.expires_at else None,
            }
            async with conn.transaction():
                told += await operational.emit_throttled(
                    conn,
                    key.tenant_id,
                    "api_key.expiring",
                    key.id,
                    notice,
                    KEY_NOTICE_WINDOW_SECONDS,
                )
    return told


# Attempts are counted once they can no longer be committing: a try is recorded up to a
# lease after it started.
ROLL_UP_BATCH = 20_000
ROLL_UP_SECONDS = 20.0


@maintenance_task("roll_up_delivery_stats")
async def roll_up_delivery_stats(context: JobContext, timestamp: int) -> int:
    """Every minute: count the attempts since the last run into delivery_stats (the console's
    charts), in batches, for at most 20 s (a backlog is caught up over the next runs)."""
    settings = Settings.from_env()
    settled_before = datetime.now(UTC) - timedelta(seconds=settings.delivery_lease_seconds + 5)
    counted, deadline = 0, time.monotonic() + ROLL_UP_SECONDS
    pool = context.app.connector.pool  # type: ignore[attr-defined]
    while time.monotonic() < deadline:
        async with pool.connection() as conn, conn.transaction():
            done = await delivery_stats.roll_up_batch(conn, settled_before, ROLL_UP_BATCH)
        counted += done
        if done < ROLL_UP_BATCH:
            break
    return counted
