"""SQL for endpoint_rate_windows: deliveries handed out per endpoint per second, all workers.

Endpoints are named by (tenant_id, endpoint_id), as the table's key is."""

from __future__ import annotations

import uuid

from psycopg import AsyncConnection

from db.query import fetch_tuples

# Add what each rate-limited endpoint is handed in the current second; returns the new totals
# (endpoint_rate_windows_pkey).
COUNT = """
INSERT INTO endpoint_rate_windows AS w (tenant_id, endpoint_id, window_start, sent)
SELECT tenant_id, id, date_trunc('second', now()), wanted
FROM unnest(%(tenant_ids)s::uuid[], %(ids)s::uuid[], %(wanted)s::int[]) AS r(tenant_id, id, wanted)
ON CONFLICT (tenant_id, endpoint_id, window_start) DO UPDATE SET sent = w.sent + EXCLUDED.sent
RETURNING tenant_id, endpoint_id, sent
"""

# Give back what was counted but not sent this second (endpoint_rate_windows_pkey).
UNCOUNT = """
UPDATE endpoint_rate_windows AS w SET sent = w.sent - r.unused
FROM unnest(%(tenant_ids)s::uuid[], %(ids)s::uuid[], %(unused)s::int[]) AS r(tenant_id, id, unused)
WHERE w.tenant_id = r.tenant_id AND w.endpoint_id = r.id AND w.window_start = date_trunc('second', now())
"""

# Forget windows older than a minute (a small UNLOGGED table: a scan is fine).
PURGE = "DELETE FROM endpoint_rate_windows WHERE window_start < now() - interval '1 minute'"


EndpointKey = tuple[uuid.UUID, uuid.UUID]  # (tenant_id, endpoint_id)


async def count(conn: AsyncConnection, wanted: dict[EndpointKey, int]) -> dict[EndpointKey, int]:
    """Add `wanted` to each endpoint's current second; returns the new totals."""
    params = {**_keys(wanted), "wanted": list(wanted.values())}
    rows = await fetch_tuples(conn, COUNT, params)
    return {(tenant_id, endpoint_id): sent for tenant_id, endpoint_id, sent in rows}


async def uncount(conn: AsyncConnection, unused: dict[EndpointKey, int]) -> None:
    """Give back what was counted but not sent this second."""
    await conn.execute(UNCOUNT, {**_keys(unused), "unused": list(unused.values())})


def _keys(counts: dict[EndpointKey, int]) -> dict[str, list[uuid.UUID]]:
    return {"tenant_ids": [t for t, _ in counts], "ids": [e for _, e in counts]}


async def purge(conn: AsyncConnection) -> None:
    """Forget rate windows older than a minute."""
    await conn.execute(PURGE)
