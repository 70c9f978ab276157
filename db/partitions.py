"""Partition rotation for every daily-partitioned table."""

from __future__ import annotations

from datetime import date, timedelta

from psycopg import AsyncConnection

from db.query import fetch_value

# The daily-partitioned tables; names are fixed here, never taken from input.
PARTITIONED_TABLES = ("events", "deliveries", "delivery_attempts", "request_logs")

# Create the missing daily partitions of one table (catalog only; no index needed).
CREATE = "SELECT eventgate_create_daily_partitions(%(table)s::regclass, %(first_day)s, %(days)s)"

# Drop one table's daily partitions older than before_day (catalog only; no index needed).
DROP = "SELECT eventgate_drop_daily_partitions(%(table)s::regclass, %(before_day)s)"


async def create_ahead(conn: AsyncConnection, table: str, today: date, days_ahead: int) -> int:
    """Make sure yesterday .. today + days_ahead exist; return how many were created."""
    params = {"table": table, "first_day": today - timedelta(days=1), "days": days_ahead + 1}
    return await fetch_value(conn, CREATE, params) or 0


async def drop_expired(conn: AsyncConnection, table: str, today: date, retention_days: int) -> int:
    """Drop the partitions whose whole day is older than the retention; return how many."""
    params = {"table": table, "before_day": today - timedelta(days=retention_days)}
    return await fetch_value(conn, DROP, params) or 0
