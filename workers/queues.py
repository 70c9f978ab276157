"""Delivery queues: an event's priority picks the procrastinate queue and job priority."""

from __future__ import annotations

# An event's priority picks the queue in the fan-out statement (db/events.py):
# high -> critical, normal -> default, low -> bulk.
DELIVERY_QUEUES = ("critical", "default", "bulk")
# Every queue Eventgate's tasks use (a worker on all of them runs everything).
WORKER_QUEUES = (*DELIVERY_QUEUES, "maintenance")
# Higher runs first when one worker listens to several queues.
JOB_PRIORITY = {"critical": 10, "default": 0, "bulk": -10}


def queueing_lock(queue: str) -> str:
    """At most one waiting deliver job per queue; a running one claims everything due.

    The fan-out statement in db/events.py looks for jobs under the same name.
    """
    return f"deliver:{queue}"
