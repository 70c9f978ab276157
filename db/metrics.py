"""SQL read at scrape time for the figures every process would see alike (queues, dead letters,
endpoint states, partitions): exact across API processes and CLI workers, each index-served."""

from __future__ import annotations

import msgspec
from psycopg import AsyncConnection

from db.query import fetch_all, fetch_one


class QueueFigures(msgspec.Struct):
    """Due deliveries of one queue and how long the oldest has waited."""

    queue: str
    due: int
    oldest_due_seconds: float


class EndpointFigures(msgspec.Struct):
    """Live endpoints by state."""

    circuit_open: int
    disabled: int
    dead_letters: int


class KeyFigures(msgspec.Struct):
    """API keys that still work but expire soon."""

    expiring_within_7_days: int


class TaskFigures(msgspec.Struct):
    """A maintenance task's failures so far and its last success (epoch seconds)."""

    task: str
    failures_total: int
    last_success_seconds: float | None


class PartitionFigures(msgspec.Struct):
    """One partition's size."""

    parent_table: str
    partition_name: str
    estimated_rows: int
    total_bytes: int


# Due deliveries per queue and the age of the oldest (the eventgate_queue_backlog view, served
# by deliveries_due_idx: unfinished rows only, ordered by due time within each queue).
QUEUES = "SELECT queue, due, oldest_due_seconds FROM eventgate_queue_backlog"

# Endpoints with an open circuit or disabled (endpoints_tenant_idx: live rows), and dead
# letters (deliveries_dead_idx, an index-only count).
ENDPOINTS = """
SELECT count(*) FILTER (WHERE circuit_open_until > now()) AS circuit_open,
       count(*) FILTER (WHERE NOT is_active) AS disabled,
       (SELECT count(*) FROM deliveries WHERE status = 'dead') AS dead_letters
FROM endpoints WHERE deleted_at IS NULL
"""

# Usable keys that expire within 7 days (api_keys_expiring_idx).
KEYS = """
SELECT count(*) AS expiring_within_7_days FROM api_keys
WHERE revoked_at IS NULL AND expires_at IS NOT NULL
  AND expires_at > now() AND expires_at <= now() + interval '7 days'
"""

# Each maintenance task's failures and last success (task_totals: one row per task).
TASKS = """
SELECT task, failures_total, EXTRACT(epoch FROM last_success_at)::float8 AS last_success_seconds
FROM task_totals
"""

# Every partition and its size (the eventgate_partitions view: the catalog, not the tables).
PARTITIONS = """
SELECT parent_table, partition_name, estimated_rows, total_bytes FROM eventgate_partitions
"""


async def queues(conn: AsyncConnection) -> list[QueueFigures]:
    """Due deliveries and oldest due age per queue that has any."""
    return await fetch_all(conn, QUEUES, None, QueueFigures)


async def endpoints(conn: AsyncConnection) -> EndpointFigures:
    """Endpoint states and the dead-letter count."""
    found = await fetch_one(conn, ENDPOINTS, None, EndpointFigures)
    assert found is not None
    return found


async def keys(conn: AsyncConnection) -> KeyFigures:
    """How many usable keys expire within 7 days."""
    found = await fetch_one(conn, KEYS, None, KeyFigures)
    assert found is not None
    return found


async def partitions(conn: AsyncConnection) -> list[PartitionFigures]:
    """Every partition's estimated rows and size."""
    return await fetch_all(conn, PARTITIONS, None, PartitionFigures)


async def tasks(conn: AsyncConnection) -> list[TaskFigures]:
    """The totals of every task that has run."""
    return await fetch_all(conn, TASKS, None, TaskFigures)
