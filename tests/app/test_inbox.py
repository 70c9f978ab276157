"""The pull inbox, acknowledgements and deletes."""

from __future__ import annotations

import asyncio
import uuid

from tests.helpers import auth, event_body, make_key


async def ingest(client, key, n, **overrides) -> list[str]:
    events = [event_body(payload={"i": i}, **overrides) for i in range(n)]
    response = await client.post("/v1/events/batch", json={"events": events}, headers=auth(key))
    assert response.status_code == 201
    return [item["event_id"] for item in response.json()["events"]]


async def test_paging_while_inserting_returns_each_existing_event_once(client, database_url):
    key = await make_key(database_url)
    existing = await ingest(client, key, 250)
    seen: list[str] = []
    cursor = None
    inserted_meanwhile = 0
    while True:
        params = {"limit": 100} | ({"cursor": cursor} if cursor else {})
        page, _ = await asyncio.gather(
            client.get("/v1/inbox", params=params, headers=auth(key)),
            client.post("/v1/events", json=event_body(source="late"), headers=auth(key)),
        )
        inserted_meanwhile += 1
        body = page.json()
        assert page.status_code == 200
        assert body["pagination"]["limit"] == 100
        seen.extend(e["id"] for e in body["events"])
        cursor = body["pagination"]["next_cursor"]
        if cursor is None:
            break
    existing_seen = [event_id for event_id in seen if event_id in set(existing)]
    assert existing_seen == existing  # each once, oldest first
    assert len(seen) == len(set(seen))
    assert inserted_meanwhile >= 3


async def test_inbox_filters_and_hides_acknowledged(client, database_url):
    key = await make_key(database_url)
    billing = await ingest(client, key, 3, source="billing", event_type="invoice.paid")
    await ingest(client, key, 2, source="crm", event_type="contact.created")
    only_crm = await client.get("/v1/inbox", params={"source": "crm"}, headers=auth(key))
    assert [e["source"] for e in only_crm.json()["events"]] == ["crm", "crm"]
    by_type = await client.get(
        "/v1/inbox", params={"event_type": "invoice.paid"}, headers=auth(key)
    )
    assert [e["id"] for e in by_type.json()["events"]] == billing
    await client.post(f"/v1/events/{billing[0]}/ack", headers=auth(key))
    after_ack = await client.get("/v1/inbox", params={"source": "billing"}, headers=auth(key))
    assert [e["id"] for e in after_ack.json()["events"]] == billing[1:]


async def test_inbox_rejects_bad_limit_and_cursor(client, database_url):
    key = await make_key(database_url)
    for params in ({"limit": 101}, {"limit": 0}, {"limit": "x"}, {"cursor": "!!not-ours"}):
        response = await client.get("/v1/inbox", params=params, headers=auth(key))
        assert response.status_code == 400, params
        assert response.json()["error"]["code"] == "validation_error"


async def test_twenty_concurrent_acks_one_wins(client, database_url):
    key = await make_key(database_url)
    [event_id] = await ingest(client, key, 1)
    responses = await asyncio.gather(
        *(client.post(f"/v1/events/{event_id}/ack", headers=auth(key)) for _ in range(20))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * 19
    winner = next(r for r in responses if r.status_code == 200).json()
    assert winner["acknowledged_at"]
    event = (await client.get(f"/v1/events/{event_id}", headers=auth(key))).json()
    assert event["status"] == "acknowledged"
    assert event["acknowledged_at"] == winner["acknowledged_at"]


async def test_ack_and_delete_edge_cases(client, database_url):
    key = await make_key(database_url)
    [event_id] = await ingest(client, key, 1)
    unknown = "01a2008a-439a-71a7-bbeb-a015f3f4f8f0"
    assert (await client.post(f"/v1/events/{unknown}/ack", headers=auth(key))).status_code == 404
    assert (await client.get(f"/v1/events/{unknown}", headers=auth(key))).status_code == 404
    not_v7 = str(uuid.uuid4())
    assert (await client.get(f"/v1/events/{not_v7}", headers=auth(key))).status_code == 404
    for path in ("/v1/events/not-an-id", "/v1/events/not-an-id/ack"):
        method = client.get if path.endswith("id") else client.post
        response = await method(path, headers=auth(key))
        assert response.status_code == 400
        assert "event_id" in response.json()["error"]["message"]
    assert (await client.delete("/v1/events/not-an-id", headers=auth(key))).status_code == 400

    first = await client.delete(f"/v1/events/{event_id}", headers=auth(key))
    assert first.status_code == 200
    assert first.json()["deleted"] is True
    again = await client.delete(f"/v1/events/{event_id}", headers=auth(key))
    assert again.status_code == 200
    assert again.json()["deleted"] is False
    assert (await client.get(f"/v1/events/{event_id}", headers=auth(key))).status_code == 404


async def test_inbox_filters_by_channel_and_pages_within_it(client, database_url):
    key = await make_key(database_url)
    mine = await ingest(client, key, 3, channels=["customer-1", "eu"])
    await ingest(client, key, 2, channels=["customer-2"])
    await ingest(client, key, 2)
    first = await client.get(
        "/v1/inbox", params={"channel": "customer-1", "limit": 2}, headers=auth(key)
    )
    assert [e["id"] for e in first.json()["events"]] == mine[:2]
    cursor = first.json()["pagination"]["next_cursor"]
    rest = await client.get(
        "/v1/inbox", params={"channel": "customer-1", "cursor": cursor}, headers=auth(key)
    )
    assert [e["id"] for e in rest.json()["events"]] == mine[2:]
    both = {"channel": "eu", "source": "billing"}
    assert (
        len((await client.get("/v1/inbox", params=both, headers=auth(key))).json()["events"]) == 3
    )
    none = await client.get("/v1/inbox", params={"channel": "nobody"}, headers=auth(key))
    assert none.json()["events"] == []
