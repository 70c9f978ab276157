"""Partition rotation for every daily-partitioned table."""

from __future__ import annotations

from datetime import date, timedelta

from psycopg import AsyncConnection

from core.vocabulary import UNFINISHED_DELIVERY_STATUSES, sql_in
from db.query import fetch_value

# The daily-partitioned tables; names are fixed here, never taken from input.
PARTITIONED_TABLES = ("events", "deliveries", "delivery_attempts", "request_logs")
# A delivery waiting for its deliver_at keeps its day (events keep a day whose deliveries are
# unfinished by themselves: eventgate_drop_daily_partitions).
HELD_BY_SCHEDULED = ("deliveries",)

# The creation day of the oldest delivery still waiting for its deliver_at
# (deliveries_scheduled_idx: one short index scan per partition).
OLDEST_SCHEDULED = f"""
SELECT min(created_at) FROM deliveries
WHERE deliver_at > now() AND status IN {sql_in(UNFINISHED_DELIVERY_STATUSES)}
"""

# Create the missing daily partitions of one table (catalog only; no index needed).
CREATE = "SELECT eventgate_create_daily_partitions(%(table)s::regclass, %(first_day)s, %(days)s)"

# Drop one table's daily partitions older than before_day (catalog only; no index needed).
DROP = "SELECT eventgate_drop_daily_partitions(%(table)s::regclass, %(before_day)s)"


async def create_ahead(conn: AsyncConnection, table: str, today: date, days_ahead: int) -> int:
    """Make sure yesterday .. today + days_ahead exist; return how many were created."""
    params = {"table": table, "first_day": today - timedelta(days=1), "days": days_ahead + 1}
    return await fetch_value(conn, CREATE, params) or 0


async def oldest_scheduled_day(conn: AsyncConnection) -> date | None:
    """The day of the oldest delivery still waiting for its time (retention keeps it)."""
    oldest = await fetch_value(conn, OLDEST_SCHEDULED)
    return oldest.date() if oldest is not None else None


async def drop_expired(
    conn: AsyncConnection,
    table: str,
    today: date,
    retention_days: int,
    keep_from: date | None = None,
) -> int:
    """Drop the partitions whose whole day is older than the retention, and than keep_from
    (the oldest day a scheduled delivery still needs); return how many."""
    before_day = today - timedelta(days=retention_days)
    if keep_from is not None and table in HELD_BY_SCHEDULED:
        before_day = min(before_day, keep_from)
    return await fetch_value(conn, DROP, {"table": table, "before_day": before_day}) or 0
