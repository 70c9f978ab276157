"""The event type catalog and JSON Schema validation of ingested payloads."""

from __future__ import annotations

from tests.helpers import auth, event_body, make_key

INVOICE_SCHEMA = {
    "type": "object",
    "required": ["amount"],
    "properties": {"amount": {"type": "integer", "minimum": 0}, "lines": {"type": "array"}},
}


async def test_catalog_crud_and_archive(client, database_url):
    key = await make_key(database_url)
    created = await client.post(
        "/v1/event-types",
        json={"name": "invoice.paid", "description": "paid", "schema": INVOICE_SCHEMA},
        headers=auth(key),
    )
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1
    again = await client.post("/v1/event-types", json={"name": "invoice.paid"}, headers=auth(key))
    assert again.status_code == 409
    for name in ("a.one", "b.two", "c.three"):
        await client.post("/v1/event-types", json={"name": name}, headers=auth(key))

    first = (await client.get("/v1/event-types?limit=2", headers=auth(key))).json()
    assert [t["name"] for t in first["event_types"]] == ["a.one", "b.two"]
    cursor = first["pagination"]["next_cursor"]
    second = (
        await client.get(f"/v1/event-types?limit=2&cursor={cursor}", headers=auth(key))
    ).json()
    assert [t["name"] for t in second["event_types"]] == ["c.three", "invoice.paid"]

    patched = await client.patch(
        "/v1/event-types/a.one", json={"description": "first"}, headers=auth(key)
    )
    assert patched.json()["description"] == "first"
    assert patched.json()["version"] == 2
    archived = await client.delete("/v1/event-types/a.one", headers=auth(key))
    assert archived.status_code == 200
    assert archived.json()["archived"] is True
    listed = (await client.get("/v1/event-types", headers=auth(key))).json()
    assert "a.one" not in [t["name"] for t in listed["event_types"]]
    with_archived = (
        await client.get("/v1/event-types?include_archived=true", headers=auth(key))
    ).json()
    assert "a.one" in [t["name"] for t in with_archived["event_types"]]
    assert (await client.get("/v1/event-types/nope", headers=auth(key))).status_code == 404
    bad_name = await client.post("/v1/event-types", json={"name": "no spaces"}, headers=auth(key))
    assert bad_name.status_code == 400


async def test_invalid_schema_is_refused(client, database_url):
    key = await make_key(database_url)
    response = await client.post(
        "/v1/event-types",
        json={"name": "x", "schema": {"type": "no-such-type"}},
        headers=auth(key),
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"]["field"] == "schema"


async def test_payloads_are_validated_against_the_schema(client, database_url):
    key = await make_key(database_url)
    await client.post(
        "/v1/event-types",
        json={"name": "invoice.paid", "schema": INVOICE_SCHEMA},
        headers=auth(key),
    )
    ok = await client.post("/v1/events", json=event_body(payload={"amount": 5}), headers=auth(key))
    assert ok.status_code == 201
    bad = await client.post(
        "/v1/events", json=event_body(payload={"amount": -1}), headers=auth(key)
    )
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert error["details"]["field"] == "payload.amount"
    assert "$.amount" in error["message"]
    batch = await client.post(
        "/v1/events/batch",
        json={"events": [event_body(payload={"amount": 1}), event_body(payload={"lines": 3})]},
        headers=auth(key),
    )
    assert batch.status_code == 400
    assert batch.json()["error"]["details"]["field"].startswith("events[1].payload")
    # Untyped events are not checked; changing the schema applies at once.
    other = event_body(event_type="free.form", payload={"anything": True})
    assert (await client.post("/v1/events", json=other, headers=auth(key))).status_code == 201
    await client.patch("/v1/event-types/invoice.paid", json={"schema": None}, headers=auth(key))
    again = await client.post(
        "/v1/events", json=event_body(payload={"amount": -1}), headers=auth(key)
    )
    assert again.status_code == 201
    inbox = (await client.get("/v1/inbox", headers=auth(key))).json()
    assert len(inbox["events"]) == 3  # the refused ones left nothing behind
