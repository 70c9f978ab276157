"""Request logs: written off the request path in batches, read per tenant with filters; a
database that is away costs rows (counted), never a request."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from app.request_logs.buffer import RequestLogBuffer
from core.metrics import REQUEST_LOGS_DROPPED
from db import request_logs
from db.ids import new_id
from db.request_logs import RequestLog
from tests.helpers import auth, event_body, make_key

NO_FILTERS = {
    **dict.fromkeys(("status", "method", "path", "key_id", "since", "until")),
    "before": uuid.UUID(int=2**128 - 1),
    "limit": 10,
}


async def logged(client, key: str, **params) -> list[dict]:
    # The app's pool belongs to the client's own event loop (its portal thread): flush there.
    buffer = client.app.state.request_logs
    await asyncio.to_thread(client.blocking_portal.call, buffer.flush)
    response = await client.get("/v1/request-logs", params=params, headers=auth(key))
    assert response.status_code == 200, response.text
    return response.json()["requests"]


async def test_requests_are_logged_per_tenant_and_filtered(client, database_url):
    key = await make_key(database_url)
    other = await make_key(database_url, tenant="other")
    for _ in range(3):
        await client.post("/v1/events", json=event_body(), headers=auth(key))
    await client.post("/v1/events", json={"nope": 1}, headers=auth(key))
    await client.get("/v1/endpoints", headers=auth(other))
    source = {"name": "s", "verification": {"scheme": "none"}, "event_type": "x"}
    trigger = (await client.post("/v1/sources", json=source, headers=auth(key))).json()
    await client.post(trigger["source"]["trigger_path"], json={"a": 1})  # no key: not logged
    mine = await logged(client, key)
    assert [(r["method"], r["route"], r["status"]) for r in mine] == [
        ("POST", "/v1/sources", 201),
        ("POST", "/v1/events", 400),
        ("POST", "/v1/events", 201),
        ("POST", "/v1/events", 201),
        ("POST", "/v1/events", 201),
    ]
    assert all(r["request_id"] and r["latency_ms"] >= 0 and r["client_ip"] for r in mine)
    assert [r["status"] for r in await logged(client, key, status=400)] == [400]
    assert len(await logged(client, key, path="/v1/events", method="POST")) == 4
    key_id = mine[0]["key_id"]
    assert len(await logged(client, key, key_id=key_id)) >= 5
    first = await client.get("/v1/request-logs", params={"limit": 2}, headers=auth(key))
    cursor = first.json()["pagination"]["next_cursor"]
    rest = await logged(client, key, cursor=cursor, limit=10)
    ids = [r["id"] for r in first.json()["requests"]] + [r["id"] for r in rest]
    assert len(ids) == len(set(ids)) >= 6  # the first listing is logged too
    theirs = await logged(client, other)
    assert [(r["route"], r["status"]) for r in theirs][-1] == ("/v1/endpoints", 200)
    assert "src_" not in str(mine)
    for bad in ({"status": 99}, {"method": "get"}, {"path": "no-slash"}, {"cursor": "x"}):
        response = await client.get("/v1/request-logs", params=bad, headers=auth(key))
        assert response.status_code == 400, bad


async def test_without_a_database_rows_wait_then_drop_oldest_and_requests_never_wait():
    pool = AsyncConnectionPool("postgresql://eventgate@127.0.0.1:1/none", min_size=1, open=False)
    await pool.open(wait=False)
    buffer = RequestLogBuffer(pool, capacity=10, batch=4)
    counted = REQUEST_LOGS_DROPPED._value.get()
    try:
        for _ in range(25):
            buffer.add(_row())  # synchronous: a request never waits on the database
        assert buffer.pending() == 10
        assert buffer.dropped == 15
        await buffer.flush(timeout=0.2)  # fails quietly, keeps what it can
        assert buffer.pending() == 10
        assert buffer.dropped == 15
        assert REQUEST_LOGS_DROPPED._value.get() - counted == 15  # the metric counts them
    finally:
        await pool.close()


def _row() -> RequestLog:
    from datetime import UTC, datetime

    return RequestLog(
        new_id(), new_id(), None, "GET", "/v1/inbox", 200, 1.0, "r", "127.0.0.1", datetime.now(UTC)
    )


async def test_a_batch_is_stored_as_written_and_a_missing_day_is_refused(database_url):
    now = datetime.now(UTC)
    tenant_id, key_id = new_id(), new_id()
    rows = [
        RequestLog(new_id(), tenant_id, None, "POST", "/v1/events", 201, 3.25, None, None, now),
        RequestLog(
            new_id(), tenant_id, key_id, "GET", "/v1/inbox", 429, 0.5, "ré-1", "2001:db8::1", now
        ),
    ]
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await request_logs.write(conn, rows)
        stored = await request_logs.page(conn, tenant_id, NO_FILTERS)
        assert sorted(stored, key=lambda row: row.id) == rows
        # A day without its partition is refused whole: the buffer makes the partitions and
        # writes the batch again.
        far = msgspec.structs.replace(rows[0], id=new_id(), created_at=now + timedelta(days=400))
        with pytest.raises(psycopg.errors.CheckViolation):
            await request_logs.write(conn, [msgspec.structs.replace(rows[1], id=new_id()), far])
        assert len(await request_logs.page(conn, tenant_id, NO_FILTERS)) == 2  # nothing of it
