"""Portal links: one channel of one tenant, framed only by the allowed origin, expiring."""

from __future__ import annotations

import psycopg

from tests.app.console.helpers import csrf_of, post_form
from tests.helpers import auth, make_key

ORIGIN = "https://app.example"


async def endpoint_for(client, key: str, channel: str, url: str) -> str:
    created = await client.post(
        "/v1/endpoints", json={"url": url, "channels": [channel]}, headers=auth(key)
    )
    assert created.status_code == 201, created.text
    return created.json()["endpoint"]["id"]


async def portal_for(client, key: str, channel: str, **extra) -> str:
    """The path of a new portal link for `channel`."""
    answer = await client.post(
        "/v1/portal-links",
        json={"channel": channel, "allowed_origin": ORIGIN, **extra},
        headers=auth(key),
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["url"].startswith("http://testserver.local/portal/")
    return "/" + body["url"].split("/", 3)[3].rstrip("/")


async def test_a_portal_shows_only_its_channel(client, database_url):
    key = await make_key(database_url)
    mine = await endpoint_for(client, key, "cust-1", "https://one.example/hook")
    theirs = await endpoint_for(client, key, "cust-2", "https://two.example/hook")
    portal = await portal_for(client, key, "cust-1")
    listed = await client.get(f"{portal}/endpoints")
    assert listed.status_code == 200
    assert "one.example" in listed.text
    assert "two.example" not in listed.text
    assert (await client.get(f"{portal}/endpoints/{mine}")).status_code == 200
    for suffix in ("", "/edit", "/secret"):
        refused = await client.get(f"{portal}/endpoints/{theirs}{suffix}")
        assert refused.status_code == 404, suffix
        assert "two.example" not in refused.text
    csrf = csrf_of((await client.get(f"{portal}/endpoints/{mine}")).text)
    for action in ("disable", "delete", "rotate-secret", "test", "recover"):
        assert (
            await post_form(client, f"{portal}/endpoints/{theirs}/{action}", csrf)
        ).status_code == 404
    assert (await client.get(f"{portal}/deliveries?endpoint_id={theirs}")).status_code == 404
    assert (await client.get(f"{portal}/deliveries")).status_code == 404
    for console_only in ("/keys", "/audit", "/events", "/event-types/new", "/sources"):
        assert (await client.get(f"{portal}{console_only}")).status_code == 404
    # The catalogue of event types is published to every customer's portal.
    assert (await client.get(f"{portal}/event-types")).status_code == 200


async def test_a_portal_creates_endpoints_in_its_channel_only(client, database_url):
    key = await make_key(database_url)
    portal = await portal_for(client, key, "cust-1")
    csrf = csrf_of((await client.get(f"{portal}/endpoints/new")).text)
    created = await post_form(
        client, f"{portal}/endpoints", csrf, url="https://mine.example/h", channels="cust-2"
    )
    assert created.status_code == 303, created.text
    endpoint_id = created.headers["location"].split("?")[0].rsplit("/", 1)[1]
    shown = (await client.get(f"/v1/endpoints/{endpoint_id}", headers=auth(key))).json()
    assert shown["channels"] == ["cust-1"]
    edited = await post_form(
        client,
        f"{portal}/endpoints/{endpoint_id}",
        csrf,
        url="https://x.example/h",
        channels="cust-2",
    )
    assert edited.status_code == 303
    shown = (await client.get(f"/v1/endpoints/{endpoint_id}", headers=auth(key))).json()
    assert shown["channels"] == ["cust-1"]
    assert shown["url"] == "https://x.example/h"
    with psycopg.connect(database_url) as conn:
        actor = conn.execute(
            "SELECT actor_key_prefix FROM audit_logs WHERE action = 'endpoint.update'"
        ).fetchone()
    assert actor == ("portal:cust-1",)


async def test_a_portal_is_framed_by_its_origin_only(client, database_url):
    key = await make_key(database_url)
    portal = await portal_for(client, key, "cust-1")
    page = await client.get(f"{portal}/endpoints")
    assert f"frame-ancestors {ORIGIN}" in page.headers["content-security-policy"]
    assert "x-frame-options" not in page.headers
    assert page.headers["referrer-policy"] == "no-referrer"
    console = await client.get("/console/sign-in")
    assert console.headers["x-frame-options"] == "DENY"


async def test_unknown_and_expired_links_open_nothing(client, database_url):
    key = await make_key(database_url)
    await endpoint_for(client, key, "cust-1", "https://one.example/hook")
    portal = await portal_for(client, key, "cust-1")
    assert (await client.get("/portal/nope/endpoints")).status_code == 404
    assert (await client.get(f"/portal/{'x' * 500}/endpoints")).status_code == 404
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE portal_links SET expires_at = now() - interval '1 second'")
    expired = await client.get(f"{portal}/endpoints")
    assert expired.status_code == 404
    assert "one.example" not in expired.text


async def test_bad_portal_link_requests_are_refused(client, database_url):
    key = await make_key(database_url)
    reader = await make_key(database_url, scopes=["events:read"])
    bad = [
        {"channel": "cust-1", "allowed_origin": "https://app.example/path"},
        {"channel": "cust-1", "allowed_origin": "*"},
        {"channel": "cust-1", "allowed_origin": "javascript:alert(1)"},
        {"channel": "cust-1", "allowed_origin": "https://a.example 'unsafe-inline'"},
        {"channel": "cust 1", "allowed_origin": ORIGIN},
        {"channel": "cust-1\u0000", "allowed_origin": ORIGIN},
        {"channel": "cust-1", "allowed_origin": ORIGIN, "expires_in_seconds": 10**30},
        {"channel": "cust-1", "allowed_origin": ORIGIN, "expires_in_seconds": 5},
    ]
    for body in bad:
        answer = await client.post("/v1/portal-links", json=body, headers=auth(key))
        assert answer.status_code == 400, (body, answer.text)
    forbidden = await client.post(
        "/v1/portal-links", json={"channel": "c", "allowed_origin": ORIGIN}, headers=auth(reader)
    )
    assert forbidden.status_code == 403
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM portal_links").fetchone() == (0,)
