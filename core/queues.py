"""Delivery queues: an event's priority picks the procrastinate queue, job priority and lock."""

from __future__ import annotations

from typing import Final

# An event's priority picks its deliveries' queue: high -> critical, normal -> default,
# low -> bulk. Mirrored by the CHECK on deliveries.queue.
QUEUE_OF_PRIORITY: Final = {"high": "critical", "normal": "default", "low": "bulk"}
DELIVERY_QUEUES: Final = ("critical", "default", "bulk")
MAINTENANCE_QUEUE: Final = "maintenance"
# Every queue Eventgate's tasks use (a worker on all of them runs everything).
WORKER_QUEUES: Final = (*DELIVERY_QUEUES, MAINTENANCE_QUEUE)
# Higher runs first when one worker listens to several queues.
JOB_PRIORITY: Final = {"critical": 10, "default": 0, "bulk": -10}
# The name of the task that claims and sends due deliveries.
DELIVER_TASK: Final = "deliver"
# At most one waiting deliver job per queue holds this lock: `deliver:<queue>`.
QUEUEING_LOCK_PREFIX: Final = "deliver:"


def queueing_lock(queue: str) -> str:
    """At most one waiting deliver job per queue; a running one claims everything due."""
    return QUEUEING_LOCK_PREFIX + queue
