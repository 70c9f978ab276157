"""SQL for endpoint_rate_windows: deliveries handed out per endpoint per second, all workers."""

from __future__ import annotations

import uuid

from psycopg import AsyncConnection

from db.query import fetch_tuples

# Add what each rate-limited endpoint is handed in the current second; returns the new totals
# (endpoint_rate_windows_pkey).
COUNT = """
INSERT INTO endpoint_rate_windows AS w (endpoint_id, window_start, sent)
SELECT id, date_trunc('second', now()), wanted
FROM unnest(%(ids)s::uuid[], %(wanted)s::int[]) AS r(id, wanted)
ON CONFLICT (endpoint_id, window_start) DO UPDATE SET sent = w.sent + EXCLUDED.sent
RETURNING endpoint_id, sent
"""

# Give back what was counted but not sent this second (endpoint_rate_windows_pkey).
UNCOUNT = """
UPDATE endpoint_rate_windows AS w SET sent = w.sent - r.unused
FROM unnest(%(ids)s::uuid[], %(unused)s::int[]) AS r(id, unused)
WHERE w.endpoint_id = r.id AND w.window_start = date_trunc('second', now())
"""

# Forget windows older than a minute (a small UNLOGGED table: a scan is fine).
PURGE = "DELETE FROM endpoint_rate_windows WHERE window_start < now() - interval '1 minute'"


async def count(conn: AsyncConnection, wanted: dict[uuid.UUID, int]) -> dict[uuid.UUID, int]:
    """Add `wanted` to each endpoint's current second; returns the new totals."""
    rows = await fetch_tuples(conn, COUNT, {"ids": list(wanted), "wanted": list(wanted.values())})
    return {endpoint_id: sent for endpoint_id, sent in rows}


async def uncount(conn: AsyncConnection, unused: dict[uuid.UUID, int]) -> None:
    """Give back what was counted but not sent this second."""
    await conn.execute(UNCOUNT, {"ids": list(unused), "unused": list(unused.values())})


async def purge(conn: AsyncConnection) -> None:
    """Forget rate windows older than a minute."""
    await conn.execute(PURGE)
