"""The console's remaining actions, each through the API's own rules: scopes decide what a
key sees, dead letters are recovered and retried (in the portal too), keys rotate, and a
source's refused requests are listed."""

from __future__ import annotations

import psycopg

from tests.app.console.helpers import csrf_of, post_form, sign_in
from tests.app.console.test_portal import endpoint_for, portal_for
from tests.helpers import auth, event_body, make_key


async def dead_delivery(client, key: str, database_url: str, channel: str = "cust-1") -> tuple:
    """An endpoint of `channel` with one delivery that died; (endpoint id, delivery id)."""
    endpoint_id = await endpoint_for(client, key, channel, "https://dead.example/h")
    sent = await client.post("/v1/events", json=event_body(channels=[channel]), headers=auth(key))
    assert sent.status_code == 201
    with psycopg.connect(database_url) as conn:
        (delivery_id,) = conn.execute(
            "UPDATE deliveries SET status = 'dead' RETURNING id"
        ).fetchone()
    return endpoint_id, str(delivery_id)


def status_of(database_url: str, delivery_id: str) -> str:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT status FROM deliveries WHERE id = %s", (delivery_id,)
        ).fetchone()[0]


async def test_a_key_sees_only_the_sections_its_scopes_open(client, database_url):
    reader = await make_key(database_url, scopes=["events:read"])
    await sign_in(client, reader)
    page = (await client.get("/console/events")).text
    assert 'href="/console/events"' in page
    hidden_pages = ("/console/keys", "/console/endpoints", "/console/audit", "/console/sources")
    for hidden in (*hidden_pages, "/console/schedules", "/console/jobs"):
        assert f'href="{hidden}"' not in page
        refused = await client.get(hidden)
        assert refused.status_code == 403, hidden
        assert "lacks the" in refused.text


async def test_dead_letters_are_recovered_from_the_endpoint_page(client, database_url):
    key = await make_key(database_url)
    endpoint_id, delivery_id = await dead_delivery(client, key, database_url)
    csrf = await sign_in(client, key)
    recovered = await post_form(client, f"/console/endpoints/{endpoint_id}/recover", csrf, days="1")
    assert recovered.status_code == 303
    assert status_of(database_url, delivery_id) == "pending"


async def test_the_portal_retries_its_dead_delivery(client, database_url):
    key = await make_key(database_url)
    endpoint_id, delivery_id = await dead_delivery(client, key, database_url)
    portal = await portal_for(client, key, "cust-1")
    page = await client.get(f"{portal}/deliveries/{delivery_id}")
    assert page.status_code == 200
    assert "Retry now" in page.text
    retried = await post_form(
        client, f"{portal}/deliveries/{delivery_id}/retry", csrf_of(page.text)
    )
    assert retried.status_code == 303
    assert status_of(database_url, delivery_id) == "pending"
    listed = await client.get(f"{portal}/deliveries?endpoint_id={endpoint_id}")
    assert delivery_id in listed.text


async def test_a_key_is_rotated_from_the_console(client, database_url):
    admin = await make_key(database_url)
    other = await make_key(database_url, scopes=["events:write"])
    csrf = await sign_in(client, admin)
    listed = (await client.get("/v1/keys", headers=auth(admin))).json()["keys"]
    other_id = next(k["id"] for k in listed if k["prefix"] in other)
    rotated = await post_form(client, f"/console/keys/{other_id}/rotate", csrf, grace_seconds="0")
    assert rotated.status_code == 200
    new_key = rotated.text.split('id="new-key">', 1)[1].split("<", 1)[0]
    assert (
        await client.post("/v1/events", json=event_body(), headers=auth(new_key))
    ).status_code == 201
    assert (
        await client.post("/v1/events", json=event_body(), headers=auth(other))
    ).status_code == 401


async def test_a_sources_refused_requests_are_listed(client, database_url):
    key = await make_key(database_url)
    created = await client.post(
        "/v1/sources",
        json={"name": "gh", "verification": {"scheme": "github"}, "event_type": "gh.push"},
        headers=auth(key),
    )
    source = created.json()["source"]
    forged = await client.post(
        source["trigger_path"],
        content=b"{}",
        headers={"content-type": "application/json", "x-hub-signature-256": "sha256=00"},
    )
    assert forged.status_code == 401
    await sign_in(client, key)
    page = await client.get(f"/console/sources/{source['id']}")
    assert page.status_code == 200
    assert "x-hub-signature-256" in page.text
    assert created.json()["secret"] not in page.text
