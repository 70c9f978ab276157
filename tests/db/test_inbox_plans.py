"""Prepared statements keep good generic plans: inbox filters stay index-served, and the
fan-out statement is not planned afresh at every call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from db import deliveries, event_search, events, overview, tenants
from db.ids import first_id_at
from tests.helpers import event_row

# 20,000 pending events: one source, type and channel in a thousand is rare.
FILL = """
INSERT INTO events (id, tenant_id, source, event_type, payload, channels, created_at)
SELECT eventgate_uuidv7(now()), %(tenant_id)s,
       CASE WHEN i %% 1000 = 0 THEN 'rare' ELSE 'common' END,
       CASE WHEN i %% 1000 = 1 THEN 'rare.type' ELSE 'common.type' END,
       '{}', CASE WHEN i %% 1000 = 2 THEN ARRAY['rare'] ELSE ARRAY['common'] END, now()
FROM generate_series(1, 20000) AS i
"""


def _index_conditions(plan: dict) -> list[str]:
    found = [plan.get("Index Cond", "")]
    for child in plan.get("Plans", []):
        found.extend(_index_conditions(child))
    return found


@pytest.fixture
async def filled(database_url: str):
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        tenant, _ = await tenants.create_or_get(conn, "acme")
        await conn.execute(FILL, {"tenant_id": tenant.id})
        await conn.execute("ANALYZE events")
    return tenant.id


@pytest.mark.parametrize(("column", "value"), [("source", "rare"), ("event_type", "rare.type")])
async def test_a_prepared_inbox_filter_uses_its_index_in_the_generic_plan(
    database_url, filled, column, value
):
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        for _ in range(7):  # past psycopg's prepare threshold and the server's 5 custom plans
            page = await events.inbox_page(
                conn, filled, after=None, filters={column: value}, limit=51
            )
            assert len(page) == 20
        statements = await (
            await conn.execute(
                "SELECT name FROM pg_prepared_statements WHERE statement LIKE %s",
                [f"%AND {column} = %"],
            )
        ).fetchall()
        assert len(statements) == 1, statements
        statement_name = statements[0][0]
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        explain = psycopg.ClientCursor(conn).mogrify(
            f"EXPLAIN (FORMAT JSON) EXECUTE {statement_name}(%s, %s, %s, %s, %s)",
            [str(filled), str(events.NIL_ID), "0001-01-01T00:00:00Z", value, 51],
        )
        plan = (await (await conn.execute(explain)).fetchone())[0]
    conditions = " ".join(_index_conditions(plan[0]["Plan"]))
    assert f"{column} = " in conditions, conditions


async def test_the_channel_filter_merges_its_ordered_indexes_in_the_generic_plan(
    database_url, filled
):
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        for _ in range(7):
            page = await events.inbox_page(
                conn, filled, after=None, filters={"channel": "rare"}, limit=51
            )
            assert len(page) == 20
            assert all(event.channels == ["rare"] for event in page)
        statements = await (
            await conn.execute(
                "SELECT name FROM pg_prepared_statements WHERE statement LIKE '%channels[1] =%'"
            )
        ).fetchall()
        assert len(statements) == 1, statements
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        explain = psycopg.ClientCursor(conn).mogrify(
            f"EXPLAIN (FORMAT JSON) EXECUTE {statements[0][0]}(%s, %s, %s, %s, %s)",
            [str(filled), str(events.NIL_ID), "0001-01-01T00:00:00Z", "rare", 51],
        )
        plan = (await (await conn.execute(explain)).fetchone())[0]
    conditions = " ".join(_index_conditions(plan[0]["Plan"]))
    for k in range(1, events.MAX_CHANNELS + 1):
        assert f"channels[{k}] = " in conditions, conditions


@pytest.mark.parametrize("after_commit", [False, True])
async def test_the_fan_out_statement_keeps_a_generic_plan_however_it_announces(
    database_url, after_commit
):
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        tenant, _ = await tenants.create_or_get(conn, "acme")
        for _ in range(15):  # psycopg prepares from the 6th; the server plans 5 custom first
            async with conn.transaction():  # an Idempotency-Key's ingest announces at COMMIT
                await events.insert_with_fan_out(
                    conn, [event_row(tenant.id)], after_commit=after_commit
                )
        plans = await (
            await conn.execute(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                " WHERE statement LIKE '%jsonb_to_recordset%'"
            )
        ).fetchall()
    # Planned afresh at every call, the statement cost eight connections half their commits.
    assert plans == [(5, 5)], plans


# As many deliveries of the tenant, to endpoints and events no one looks up here.
FILL_DELIVERIES = """
INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, queue, next_attempt_at, created_at)
SELECT eventgate_uuidv7(now()), %(tenant_id)s, gen_random_uuid(), gen_random_uuid(), 'default',
       now(), now()
FROM generate_series(1, 20000)
"""


def _scans(plan: dict) -> list[tuple[str, str, str]]:
    found = [(plan["Node Type"], plan.get("Relation Name", ""), plan.get("Index Name", ""))]
    for child in plan.get("Plans", []):
        found.extend(_scans(child))
    return found


async def test_a_tenants_rows_in_id_order_come_from_the_primary_keys(database_url, filled):
    """The console's search and chart and the deliveries listing read a tenant's rows of any
    status in id order from the primary keys (tenant_id, id, created_at)."""
    now = datetime.now(UTC)
    since = now - timedelta(hours=1)
    statements = [
        (
            event_search.REACH,
            event_search._params(filled, first_id_at(now + timedelta(minutes=1)), since, since),
        ),
        (
            event_search.SEARCH + event_search.ORDER,
            event_search._params(
                filled, first_id_at(now + timedelta(minutes=1)), since, now + timedelta(minutes=1)
            )
            | {"limit": 51},
        ),
        (
            overview.PER_MINUTE,
            {"tenant_id": filled, "bounds": [first_id_at(since)], "cap": overview.HOUR_CAP},
        ),
        (
            deliveries.LIST_PAGE,
            {
                "tenant_id": filled,
                "before": None,
                "limit": 51,
                "status": None,
                "endpoint_id": None,
                "endpoint_ids": None,
                "event_id": None,
            },
        ),
    ]
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        # A larger neighbour: the tenant's rows are a fifth of each table.
        neighbour, _ = await tenants.create_or_get(conn, "globex")
        for tenant_id in (filled, *[neighbour.id] * 4):
            await conn.execute(FILL_DELIVERIES, {"tenant_id": tenant_id})
        for _ in range(4):
            await conn.execute(FILL, {"tenant_id": neighbour.id})
        await conn.execute("ANALYZE events, deliveries")
        holding = {
            name
            for (name,) in await (
                await conn.execute(
                    "SELECT DISTINCT tableoid::regclass::text FROM events WHERE tenant_id = %(t)s"
                    " UNION SELECT DISTINCT tableoid::regclass::text FROM deliveries"
                    " WHERE tenant_id = %(t)s",
                    {"t": filled},
                )
            ).fetchall()
        }
        for statement, params in statements:
            explain = psycopg.ClientCursor(conn).mogrify(
                "EXPLAIN (FORMAT JSON) " + statement, params
            )
            plan = (await (await conn.execute(explain)).fetchone())[0]
            # The partitions holding the rows (the empty ones cost nothing however read).
            scans = [
                (kind, table, index)
                for kind, table, index in _scans(plan[0]["Plan"])
                if table in holding or any(index.startswith(f"{p}_") for p in holding)
            ]
            assert scans, statement
            assert "Seq Scan" not in {kind for kind, _, _ in scans}, (statement, scans)
            indexes = {index for _, _, index in scans if index}
            assert indexes, (statement, scans)
            assert all(index.endswith("_pkey") for index in indexes), (statement, scans)


# 20,000 answered requests of a tenant.
FILL_REQUEST_LOGS = """
INSERT INTO request_logs (id, tenant_id, key_id, method, route, status, latency_ms, created_at)
SELECT eventgate_uuidv7(now()), %(tenant_id)s, NULL, 'POST', '/v1/events', 201, 1.0, now()
FROM generate_series(1, 20000)
"""


async def test_a_tenants_request_logs_come_from_the_primary_key(database_url, filled):
    """A tenant's request logs, newest first, are read from the primary key's
    (tenant_id, id) prefix, its neighbour's rows never scanned."""
    from db import request_logs

    filters = dict.fromkeys(("status", "method", "path", "key_id", "since", "until"))
    params = {"tenant_id": filled, "before": first_id_at(datetime.now(UTC)), "limit": 51}
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        neighbour, _ = await tenants.create_or_get(conn, "globex")
        for tenant_id in (filled, *[neighbour.id] * 4):
            await conn.execute(FILL_REQUEST_LOGS, {"tenant_id": tenant_id})
        await conn.execute("ANALYZE request_logs")
        explain = psycopg.ClientCursor(conn).mogrify(
            "EXPLAIN (FORMAT JSON) " + request_logs.PAGE, params | filters
        )
        plan = (await (await conn.execute(explain)).fetchone())[0]
        holding = {
            name
            for (name,) in await (
                await conn.execute("SELECT DISTINCT tableoid::regclass::text FROM request_logs")
            ).fetchall()
        }
    # The partitions holding the rows (the empty ones cost nothing however read).
    scans = [
        (kind, table, index)
        for kind, table, index in _scans(plan[0]["Plan"])
        if table in holding or any(index.startswith(f"{p}_") for p in holding)
    ]
    assert scans
    assert "Seq Scan" not in {kind for kind, _, _ in scans}, scans
    assert all(index.endswith("_pkey") for _, _, index in scans if index), scans
