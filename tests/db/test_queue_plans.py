"""The delivery engine's batch statements find their rows by primary key however long the
backlog: no statement of the hot loop reads every unfinished delivery to write back a batch."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg

from db import delivery_queue, tenants
from db.delivery_queue import Result

# 200,000 deliveries of today, one in fifty still being sent: a backlog of 4,000 unfinished.
FILL = """
INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, queue, status, attempts,
                        next_attempt_at, created_at)
SELECT eventgate_uuidv7(now()), %(tenant_id)s, gen_random_uuid(), gen_random_uuid(), 'default',
       CASE WHEN i %% 50 = 0 THEN 'delivering' ELSE 'succeeded' END, 1, now(),
       now() - make_interval(secs => i / 1000.0)
FROM generate_series(1, 200000) AS i
"""


def _deliveries_scans(plan: dict) -> list[tuple[str, str]]:
    found = []
    if "Scan" in plan["Node Type"] and plan.get("Relation Name", "").startswith("deliveries"):
        found.append((plan["Node Type"], plan.get("Index Name", "")))
    for child in plan.get("Plans", []):
        found.extend(_deliveries_scans(child))
    return found


def _result(tenant_id: uuid.UUID, row: tuple[uuid.UUID, datetime]) -> Result:
    now = datetime.now(UTC)
    return Result(
        id=row[0],
        created_at=row[1],
        tenant_id=tenant_id,
        endpoint_id=uuid.uuid4(),
        attempt=1,
        status="succeeded",
        retry_index=0,
        delay_seconds=0.0,
        status_code=200,
        response_body="",
        latency_ms=1,
        error=None,
        started_at=now,
    )


async def test_recording_a_batch_over_a_backlog_looks_each_delivery_up_by_primary_key(
    database_url,
):
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        tenant, _ = await tenants.create_or_get(conn, "acme")
        await conn.execute(FILL, {"tenant_id": tenant.id})
        await conn.execute("ANALYZE deliveries")
        rows = await (
            await conn.execute(
                "SELECT id, created_at FROM deliveries WHERE status = 'delivering' LIMIT 100"
            )
        ).fetchall()
        results = [_result(tenant.id, row) for row in rows]
        async with conn.transaction(force_rollback=True):
            cur = await conn.execute(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + delivery_queue.RECORD,
                delivery_queue.record_params(results),
            )
            plan = (await cur.fetchone())[0][0]["Plan"]
        scans = _deliveries_scans(plan)
        assert scans
        assert all(index.endswith("_pkey") for _, index in scans), scans
        await delivery_queue.record(conn, results)
        recorded = await (
            await conn.execute("SELECT count(*) FROM deliveries WHERE status = 'succeeded'")
        ).fetchone()
    assert recorded == (200000 - 4000 + 100,)
