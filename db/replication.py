"""SQL about a read replica's freshness, run on the replica itself."""

from __future__ import annotations

from psycopg import AsyncConnection

from db.query import fetch_value

# How far behind the primary this server's data may be, in seconds: 0 on a primary; on a
# standby, 0 when it has replayed all it received, else the age of the last transaction it
# replayed; NULL when it is not streaming from a primary (it may be behind by any amount)
# (pg_stat_wal_receiver; no table is read).
STALENESS = """
SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN 0
    WHEN NOT EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') THEN NULL
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
    ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
END
"""


async def staleness_seconds(conn: AsyncConnection) -> float | None:
    """How stale this server's data may be (None: unknown, it is not streaming)."""
    value = await fetch_value(conn, STALENESS)
    return None if value is None else float(value)
