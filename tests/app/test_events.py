"""Ingesting events: single and batch, and every way a body can be wrong."""

from __future__ import annotations

import uuid

import psycopg

from tests.helpers import auth, event_body, make_key


async def count_events(database_url: str) -> int:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute("SELECT count(*) FROM events")
        row = await cur.fetchone()
    assert row is not None
    return row[0]


async def test_ingest_returns_201_and_the_event_can_be_read(client, database_url):
    key = await make_key(database_url)
    body = event_body(
        metadata={"correlation_id": "c-1", "priority": "high", "idempotency_key": "k1"}
    )
    response = await client.post("/v1/events", json=body, headers=auth(key))
    assert response.status_code == 201
    accepted = response.json()
    assert accepted["status"] == "pending"
    assert accepted["request_id"] == response.headers["x-request-id"]
    assert uuid.UUID(accepted["event_id"]).version == 7

    fetched = await client.get(f"/v1/events/{accepted['event_id']}", headers=auth(key))
    assert fetched.status_code == 200
    event = fetched.json()
    assert event["payload"] == {"n": 1}
    assert event["metadata"]["correlation_id"] == "c-1"
    assert event["metadata"]["priority"] == "high"
    assert event["created_at"] == accepted["created_at"]
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute("SELECT idempotency_key, priority, correlation_id FROM events")
        assert await cur.fetchone() == ("k1", "high", "c-1")


async def test_bearer_token_is_accepted(client, database_url):
    key = await make_key(database_url)
    headers = {"Authorization": f"Bearer {key}"}
    response = await client.post("/v1/events", json=event_body(), headers=headers)
    assert response.status_code == 201


async def assert_rejected(client, key, status, *, field=None, **request) -> dict:
    response = await client.post(
        "/v1/events", headers={**auth(key), **request.pop("headers", {})}, **request
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["request_id"] == response.headers["x-request-id"]
    if field:
        assert f"`{field}`" in error["message"]
    return error


async def test_bad_bodies_are_rejected_and_store_nothing(client, database_url):
    key = await make_key(database_url)
    await assert_rejected(client, key, 400, field="extra", json=event_body(extra=1))
    missing = event_body()
    del missing["source"]
    await assert_rejected(client, key, 400, field="source", json=missing)
    await assert_rejected(client, key, 400, field="payload", json=event_body(payload=[1]))
    await assert_rejected(client, key, 400, field="event_type", json=event_body(event_type=5))
    await assert_rejected(
        client,
        key,
        400,
        field="metadata.priority",
        json=event_body(metadata={"priority": "urgent"}),
    )
    await assert_rejected(client, key, 400, json=event_body(payload={"text": "nul\u0000"}))
    malformed = await assert_rejected(
        client, key, 400, content=b'{"source": ', headers={"content-type": "application/json"}
    )
    assert malformed["code"] == "bad_request"
    await assert_rejected(
        client, key, 415, content=b"source=a", headers={"content-type": "text/plain"}
    )
    big = event_body(payload={"blob": "x" * (400 * 1024)})
    too_large = await assert_rejected(client, key, 413, json=big)
    assert too_large["code"] == "payload_too_large"
    assert await count_events(database_url) == 0


async def test_batch_is_all_or_nothing(client, database_url):
    key = await make_key(database_url)
    events = [event_body(payload={"i": i}) for i in range(500)]
    response = await client.post("/v1/events/batch", json={"events": events}, headers=auth(key))
    assert response.status_code == 201
    body = response.json()
    assert body["count"] == 500
    assert len({item["event_id"] for item in body["events"]}) == 500
    assert await count_events(database_url) == 500

    events[250] = event_body(payload={"text": "nul\u0000"})
    rejected = await client.post("/v1/events/batch", json={"events": events}, headers=auth(key))
    assert rejected.status_code == 400
    events[250] = event_body(metadata={"priority": 1})
    rejected = await client.post("/v1/events/batch", json={"events": events}, headers=auth(key))
    assert rejected.status_code == 400
    assert "events[250].metadata.priority" in rejected.json()["error"]["message"]
    too_many = [event_body()] * 501
    rejected = await client.post("/v1/events/batch", json={"events": too_many}, headers=auth(key))
    assert rejected.status_code == 400
    empty = await client.post("/v1/events/batch", json={"events": []}, headers=auth(key))
    assert empty.status_code == 400
    assert await count_events(database_url) == 500


async def test_batch_event_payload_limit(client, database_url):
    key = await make_key(database_url)
    events = [event_body(), event_body(payload={"blob": "x" * (400 * 1024)})]
    response = await client.post("/v1/events/batch", json={"events": events}, headers=auth(key))
    assert response.status_code == 413
    assert "events[1]" in response.json()["error"]["message"]
    assert await count_events(database_url) == 0


async def test_ingest_creates_a_missing_partition(client, database_url):
    key = await make_key(database_url)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT partition_name FROM eventgate_partitions WHERE parent_table = 'events'"
        )
        for (name,) in await cur.fetchall():
            await conn.execute(
                psycopg.sql.SQL("DROP TABLE {}").format(psycopg.sql.Identifier(name))
            )
    response = await client.post("/v1/events", json=event_body(), headers=auth(key))
    assert response.status_code == 201
    assert await count_events(database_url) == 1
