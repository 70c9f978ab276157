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
# The listening delivery engine, while its claims each lease several deliveries of a queue,
# claims it again by itself and promises to keep doing so for this long at most
# (delivery_claim_promises); the claim that leases fewer withdraws the promise, and the
# engine claims once more PROMISE_GRACE_SECONDS later. Ingest, announcing after its COMMIT,
# skips the NOTIFY only when the promise had at least the least slack left and its own round
# trip took less than the grace: its COMMIT then comes before the engine's claim after the
# withdrawal, or while the engine still claims by itself.
BUSY_PROMISE_SECONDS: Final = 0.5
PROMISE_GRACE_SECONDS: Final = 0.025
LEAST_PROMISE_SLACK_SECONDS: Final = 0.005
# Committing pending events of a tenant that has an open stream sends NOTIFY on this channel
# with the tenant's id; each API process LISTENs and wakes that tenant's streams.
EVENTS_STREAM_CHANNEL: Final = "eventgate_events_stream"
# An open stream's row is refreshed every heartbeat (EVENTGATE_STREAM_HEARTBEAT_SECONDS, at
# most 20 s); one not refreshed for this long belongs to a process that died.
STREAM_STALE_SECONDS: Final = 60.0
