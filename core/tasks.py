"""The registry of periodic maintenance tasks: each one's name, cron schedule (UTC) and what it
does. Workers schedule exactly these; `eventgate tasks`, the console's Jobs page, the metrics
and the alert rules read them from here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from core import cron


class TaskSpec(msgspec.Struct, frozen=True):
    """One periodic task."""

    name: str
    cron: str
    description: str
    # Jobs of the task never run two at a time (procrastinate's lock). Off only for the task
    # that frees the jobs of dead workers: a dead one of its own would hold it forever.
    exclusive: bool = True

    def next_run(self, after: datetime | None = None) -> datetime:
        """The next time the task is due."""
        return cron.next_tick(self.cron, "UTC", after or datetime.now(UTC))

    def period(self) -> timedelta:
        """The time between two runs (the alert allows twice this without a success)."""
        first = self.next_run()
        return self.next_run(first) - first


MAINTENANCE_TASKS = (
    TaskSpec(
        "rotate_partitions",
        "*/15 * * * *",
        "Create daily partitions ahead and drop those past retention",
    ),
    TaskSpec(
        "retry_stalled_jobs",
        "* * * * *",
        "Put the jobs of workers that stopped heart-beating back in the queue",
        exclusive=False,
    ),
    TaskSpec(
        "purge_rate_windows",
        "* * * * *",
        "Forget the per-second counts of endpoint rate limits that ended",
    ),
    TaskSpec(
        "purge_expired",
        "*/15 * * * *",
        "Purge expired rate-limit counters, idempotency keys, receipts, sessions, portal "
        "links, old task runs and audit entries past retention; end deliveries of deleted "
        "endpoints left by a worker that died mid-send",
    ),
    TaskSpec("fire_schedules", "* * * * *", "Ingest the events of tenant schedules that came due"),
    TaskSpec(
        "roll_up_delivery_stats",
        "* * * * *",
        "Count the attempts since the last run into delivery_stats, for the console's charts",
    ),
    TaskSpec(
        "notify_expiring_keys",
        "7 * * * *",
        "Tell operational endpoints, once per key, of API keys that expire within 7 days",
    ),
)
TASKS = {task.name: task for task in MAINTENANCE_TASKS}
