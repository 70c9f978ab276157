"""Idempotency-Key: a retried creating request gets the first answer again and changes nothing
more; the answer is stored in the same transaction as the change."""

from __future__ import annotations

import asyncio

import psycopg

from tests.helpers import auth, event_body, make_key


async def count(database_url: str, table: str) -> int:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(f"SELECT count(*) FROM {table}")  # fixed names only
        return (await cur.fetchone())[0]


def keyed(key: str, idempotency_key: str) -> dict[str, str]:
    return {**auth(key), "Idempotency-Key": idempotency_key}


async def test_a_retry_gets_the_first_answer_byte_for_byte(client, database_url):
    key = await make_key(database_url)
    first = await client.post("/v1/events", json=event_body(), headers=keyed(key, "order-1"))
    again = await client.post("/v1/events", json=event_body(), headers=keyed(key, "order-1"))
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.headers["content-type"] == first.headers["content-type"]
    assert await count(database_url, "events") == 1
    assert await count(database_url, "idempotency_keys") == 1


async def test_a_different_request_under_the_key_is_422(client, database_url):
    key = await make_key(database_url)
    await client.post("/v1/events", json=event_body(), headers=keyed(key, "k"))
    other = await client.post(
        "/v1/events", json=event_body(payload={"n": 2}), headers=keyed(key, "k")
    )
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_mismatch"
    elsewhere = await client.post(
        "/v1/events/batch", json={"events": [event_body()]}, headers=keyed(key, "k")
    )
    assert elsewhere.status_code == 422
    assert await count(database_url, "events") == 1


async def test_twenty_concurrent_copies_create_one_event(client, database_url):
    key = await make_key(database_url, rate_limit_tier="unlimited")
    answers = await asyncio.gather(
        *(
            client.post("/v1/events", json=event_body(), headers=keyed(key, "burst"))
            for _ in range(20)
        )
    )
    codes = [a.status_code for a in answers]
    assert set(codes) <= {201, 409}
    assert codes.count(201) >= 1
    firsts = {a.content for a in answers if a.status_code == 201}
    assert len(firsts) == 1  # every 201 is the same answer: the first one, or its replay
    for busy in (a for a in answers if a.status_code == 409):
        assert busy.json()["error"]["code"] == "idempotency_key_in_use"
        assert busy.headers["retry-after"] == "1"
    assert await count(database_url, "events") == 1


async def test_another_tenant_may_use_the_same_key_string(client, database_url):
    one = await make_key(database_url, tenant="one")
    two = await make_key(database_url, tenant="two")
    a = await client.post("/v1/events", json=event_body(), headers=keyed(one, "same"))
    b = await client.post("/v1/events", json=event_body(), headers=keyed(two, "same"))
    assert a.status_code == b.status_code == 201
    assert a.json()["event_id"] != b.json()["event_id"]
    assert "idempotent-replayed" not in b.headers


async def test_refused_requests_are_not_stored_and_store_nothing(client, database_url):
    key = await make_key(database_url)
    schema = {"type": "object", "required": ["amount"]}
    await client.post(
        "/v1/event-types", json={"name": "invoice.paid", "schema": schema}, headers=auth(key)
    )
    # Refused after the insert ran (schema checked before COMMIT): neither event nor answer stays.
    bad = await client.post("/v1/events", json=event_body(), headers=keyed(key, "pay-1"))
    assert bad.status_code == 400
    assert await count(database_url, "events") == 0
    assert await count(database_url, "idempotency_keys") == 0
    good = event_body(payload={"amount": 5})
    fixed = await client.post("/v1/events", json=good, headers=keyed(key, "pay-1"))
    assert fixed.status_code == 201
    assert await count(database_url, "events") == 1


async def test_metadata_idempotency_key_deduplicates_without_the_header(client, database_url):
    key = await make_key(database_url)
    body = event_body(metadata={"idempotency_key": "evt-42"})
    first = await client.post("/v1/events", json=body, headers=auth(key))
    again = await client.post("/v1/events", json=body, headers=auth(key))
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert await count(database_url, "events") == 1


async def test_other_creating_routes_replay_too(client, database_url):
    key = await make_key(database_url)
    body = {"url": "http://127.0.0.1:9/hook"}
    first = await client.post("/v1/endpoints", json=body, headers=keyed(key, "ep"))
    again = await client.post("/v1/endpoints", json=body, headers=keyed(key, "ep"))
    assert first.status_code == 201
    assert again.content == first.content
    assert await count(database_url, "endpoints") == 1
    for value in ("", "x" * 256, "tab\there"):
        bad = await client.post("/v1/endpoints", json=body, headers=keyed(key, value))
        assert bad.status_code == 400
