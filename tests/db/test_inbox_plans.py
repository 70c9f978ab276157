"""Prepared statements keep good generic plans: inbox filters stay index-served, and the
fan-out statement is not planned afresh at every call."""

from __future__ import annotations

import psycopg
import pytest

from db import events, tenants
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
