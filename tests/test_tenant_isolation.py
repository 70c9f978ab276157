"""A key never sees another tenant's rows: 404 on every id route, never listed."""

from __future__ import annotations

from tests.conftest import auth, event_body, make_key


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
