"""A key never sees another tenant's rows: 404 on every id route, never listed."""

from __future__ import annotations

from tests.helpers import auth, event_body, make_key


async def test_events_and_keys_are_invisible_across_tenants(client, database_url):
    mine = await make_key(database_url, tenant="mine")
    theirs = await make_key(database_url, tenant="theirs")
    event_id = (await client.post("/v1/events", json=event_body(), headers=auth(theirs))).json()[
        "event_id"
    ]
    their_key_id = (await client.get("/v1/keys", headers=auth(theirs))).json()["keys"][0]["id"]

    assert (await client.get(f"/v1/events/{event_id}", headers=auth(mine))).status_code == 404
    assert (await client.post(f"/v1/events/{event_id}/ack", headers=auth(mine))).status_code == 404
    deleted = await client.delete(f"/v1/events/{event_id}", headers=auth(mine))
    assert deleted.status_code == 200
    assert deleted.json()["deleted"] is False
    assert (await client.get("/v1/inbox", headers=auth(mine))).json()["events"] == []

    assert (await client.get(f"/v1/keys/{their_key_id}", headers=auth(mine))).status_code == 404
    rotate = await client.post(f"/v1/keys/{their_key_id}/rotate", headers=auth(mine))
    assert rotate.status_code == 404
    assert (await client.delete(f"/v1/keys/{their_key_id}", headers=auth(mine))).status_code == 404
    my_keys = (await client.get("/v1/keys", headers=auth(mine))).json()["keys"]
    assert their_key_id not in [k["id"] for k in my_keys]

    # Their event and key are untouched by all of the above.
    assert (await client.get(f"/v1/events/{event_id}", headers=auth(theirs))).json()[
        "status"
    ] == "pending"
    assert (await client.get("/v1/inbox", headers=auth(theirs))).status_code == 200


async def test_endpoints_deliveries_and_event_types_are_invisible_across_tenants(
    client, database_url
):
    mine = await make_key(database_url, tenant="mine")
    theirs = await make_key(database_url, tenant="theirs")
    endpoint = (
        await client.post(
            "/v1/endpoints", json={"url": "http://127.0.0.1:9/hook"}, headers=auth(theirs)
        )
    ).json()["endpoint"]
    await client.post("/v1/event-types", json={"name": "secret.type"}, headers=auth(theirs))
    event_id = (await client.post("/v1/events", json=event_body(), headers=auth(theirs))).json()[
        "event_id"
    ]
    deliveries = (await client.get("/v1/deliveries", headers=auth(theirs))).json()["deliveries"]
    assert len(deliveries) == 1
    delivery_id = deliveries[0]["id"]

    e = f"/v1/endpoints/{endpoint['id']}"
    not_found = [
        await client.get(e, headers=auth(mine)),
        await client.patch(e, json={"description": "x"}, headers=auth(mine)),
        await client.get(f"{e}/secret", headers=auth(mine)),
        await client.post(f"{e}/rotate-secret", headers=auth(mine)),
        await client.post(f"{e}/disable", headers=auth(mine)),
        await client.post(f"{e}/enable", headers=auth(mine)),
        await client.post(f"{e}/test", headers=auth(mine)),
        await client.post(
            f"{e}/recover", json={"since": "2020-01-01T00:00:00Z"}, headers=auth(mine)
        ),
        await client.delete(e, headers=auth(mine)),
        await client.get(f"/v1/deliveries/{delivery_id}", headers=auth(mine)),
        await client.post(f"/v1/deliveries/{delivery_id}/retry", headers=auth(mine)),
        await client.get(f"/v1/events/{event_id}/deliveries", headers=auth(mine)),
        await client.get("/v1/event-types/secret.type", headers=auth(mine)),
        await client.patch("/v1/event-types/secret.type", json={}, headers=auth(mine)),
        await client.delete("/v1/event-types/secret.type", headers=auth(mine)),
    ]
    assert [r.status_code for r in not_found] == [404] * len(not_found)
    assert (await client.get("/v1/endpoints", headers=auth(mine))).json()["endpoints"] == []
    assert (await client.get("/v1/deliveries", headers=auth(mine))).json()["deliveries"] == []
    filtered = await client.get(f"/v1/deliveries?event_id={event_id}", headers=auth(mine))
    assert filtered.json()["deliveries"] == []
    assert (await client.get("/v1/event-types", headers=auth(mine))).json()["event_types"] == []
    # My own event type of the same name is mine alone.
    mine_type = await client.post(
        "/v1/event-types", json={"name": "secret.type"}, headers=auth(mine)
    )
    assert mine_type.status_code == 201
    # Theirs are untouched.
    still = (await client.get(e, headers=auth(theirs))).json()
    assert still["is_active"] is True
    assert still["description"] == ""
