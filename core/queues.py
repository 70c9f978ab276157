"""Delivery queues: an event's priority picks the queue its deliveries wait in."""

from __future__ import annotations

from typing import Final

# An event's priority picks its deliveries' queue: high -> critical, normal -> default,
# low -> bulk. Mirrored by the CHECK on deliveries.queue.
QUEUE_OF_PRIORITY: Final = {"high": "critical", "normal": "default", "low": "bulk"}
DELIVERY_QUEUES: Final = ("critical", "default", "bulk")
MAINTENANCE_QUEUE: Final = "maintenance"
# Every queue Eventgate's tasks use (a worker on all of them runs everything).
WORKER_QUEUES: Final = (*DELIVERY_QUEUES, MAINTENANCE_QUEUE)
# Committing deliveries that are due now sends NOTIFY on this channel with the queue's name;
# every worker serving that queue LISTENs and claims (workers/engine.py).
DELIVERIES_DUE_CHANNEL: Final = "eventgate_deliveries_due"
