"""Every console page renders the tenant's data, and every form goes through the same
services (and rules) as the API."""

from __future__ import annotations

import html

import psycopg

from db import event_search
from tests.app.console.helpers import post_form, sign_in
from tests.helpers import auth, event_body, make_key

SOURCE = {"name": "stripe", "verification": {"scheme": "stripe"}, "event_type": "stripe.event"}


async def seed(client, key: str) -> dict[str, str]:
    """An endpoint, an event delivered to it, an event type and a source, through the API."""
    created = await client.post(
        "/v1/endpoints",
        json={"url": "https://hooks.example/in", "channels": ["cust-1"]},
        headers=auth(key),
    )
    assert created.status_code == 201, created.text
    event = await client.post("/v1/events", json=event_body(channels=["cust-1"]), headers=auth(key))
    assert event.status_code == 201, event.text
    event_type = await client.post(
        "/v1/event-types",
        json={"name": "invoice.paid", "schema": {"type": "object", "required": ["n"]}},
        headers=auth(key),
    )
    assert event_type.status_code == 201, event_type.text
    source = await client.post(
        "/v1/sources", json={**SOURCE, "secret": "whsec_x"}, headers=auth(key)
    )
    assert source.status_code == 201, source.text
    return {
        "endpoint": created.json()["endpoint"]["id"],
        "event": event.json()["event_id"],
        "source": source.json()["source"]["id"],
    }


async def test_every_page_shows_the_tenants_data(client, database_url):
    key = await make_key(database_url)
    ids = await seed(client, key)
    await sign_in(client, key)
    deliveries = await client.get(
        f"/v1/deliveries?endpoint_id={ids['endpoint']}", headers=auth(key)
    )
    delivery_id = deliveries.json()["deliveries"][0]["id"]
    expected = {
        "/console/": "events, last hour",
        "/console/events": ids["event"],
        f"/console/events/{ids['event']}": "invoice.paid",
        "/console/endpoints": "https://hooks.example/in",
        f"/console/endpoints/{ids['endpoint']}": delivery_id,
        f"/console/endpoints/{ids['endpoint']}/edit": "https://hooks.example/in",
        f"/console/endpoints/{ids['endpoint']}/secret": "whsec_",
        "/console/deliveries": delivery_id,
        f"/console/deliveries/{delivery_id}": ids["endpoint"],
        "/console/event-types": "invoice.paid",
        "/console/event-types/invoice.paid": "required",
        "/console/sources": "stripe",
        f"/console/sources/{ids['source']}": "/v1/triggers/",
        "/console/keys": "this session",
        "/console/audit": "endpoint.create",
    }
    for path, shown in expected.items():
        page = await client.get(path)
        assert page.status_code == 200, (path, page.text[:500])
        assert shown in page.text, path


async def test_the_events_page_searches_by_type_channel_and_time(client, database_url):
    key = await make_key(database_url)
    ids = await seed(client, key)
    await sign_in(client, key)
    found = await client.get("/console/events?event_type=invoice.paid&channel=cust-1")
    assert ids["event"] in found.text
    for miss in ("event_type=other", "channel=cust-2", "source=nope", "until=2020-01-01T00:00"):
        assert ids["event"] not in (await client.get(f"/console/events?{miss}")).text, miss
    by_id = await client.get(f"/console/events?event_id={ids['event']}")
    assert by_id.status_code == 303
    assert by_id.headers["location"] == f"/console/events/{ids['event']}"
    bad = await client.get("/console/events?since=yesterday")
    assert bad.status_code == 400
    assert "since" in bad.text


async def test_endpoint_forms_create_edit_disable_and_delete(client, database_url):
    key = await make_key(database_url)
    csrf = await sign_in(client, key)
    created = await post_form(
        client,
        "/console/endpoints",
        csrf,
        url="https://a.example/hook",
        event_types="invoice.* order.paid",
        channels="cust-9",
        filter='{"n": {"$gt": 1}}',
    )
    assert created.status_code == 303, created.text
    page_path = created.headers["location"].split("?")[0]
    endpoint_id = page_path.rsplit("/", 1)[1]
    shown = (await client.get(f"/v1/endpoints/{endpoint_id}", headers=auth(key))).json()
    assert shown["event_types"] == ["invoice.*", "order.paid"]
    assert shown["channels"] == ["cust-9"]
    assert shown["filter"] == {"n": {"$gt": 1}}
    edited = await post_form(client, page_path, csrf, url="https://b.example/hook")
    assert edited.status_code == 303
    assert (await client.get(page_path)).text.count("https://b.example/hook") >= 1
    assert (await post_form(client, f"{page_path}/disable", csrf)).status_code == 303
    assert "disabled" in (await client.get(page_path)).text
    assert (await post_form(client, f"{page_path}/delete", csrf)).status_code == 303
    assert (await client.get(page_path)).status_code == 404


async def test_a_bad_form_is_refused_and_changes_nothing(client, database_url):
    key = await make_key(database_url)
    csrf = await sign_in(client, key)
    cases = [
        {"url": "ftp://nope"},
        {"url": "https://a.example/", "filter": "{not json"},
        {"url": "https://a.example/", "filter": "[1]"},
        {"url": "https://a.example/", "rate_limit_per_s": "1e999"},
        {"url": "https://a.example/", "channels": "bad channel!"},
        {"url": "https://a.example/\x00"},
        {"url": "https://a.example/", "filter": "[" * 10_000},
    ]
    for fields in cases:
        answer = await post_form(client, "/console/endpoints", csrf, **fields)
        assert answer.status_code == 400, (fields, answer.status_code, answer.text[:300])
        assert "<!doctype html>" in answer.text
    raw = await client.post(
        "/console/endpoints",
        content=b"csrf_token=" + csrf.encode() + b"&url=%ff%fe",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert raw.status_code == 400
    json_body = await client.post("/console/endpoints", json={"csrf_token": csrf})
    assert json_body.status_code == 415
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM endpoints").fetchone() == (0,)


async def test_event_type_schemas_are_checked_as_the_api_checks_them(client, database_url):
    key = await make_key(database_url)
    csrf = await sign_in(client, key)
    bad = await post_form(
        client, "/console/event-types", csrf, name="a.b", schema='{"type": "nonsense"}'
    )
    assert bad.status_code == 400
    good = await post_form(
        client, "/console/event-types", csrf, name="a.b", schema='{"type": "object"}'
    )
    assert good.status_code == 303
    refused = await client.post(
        "/v1/events", json=event_body(event_type="a.b", payload=[]), headers=auth(key)
    )
    assert refused.status_code == 400


async def test_keys_are_created_shown_once_rotated_and_revoked(client, database_url):
    admin = await make_key(database_url)
    csrf = await sign_in(client, admin)
    created = await post_form(
        client, "/console/keys", csrf, name="ci", **{"scope:events:write": "on"}
    )
    assert created.status_code == 200
    new_key = created.text.split('id="new-key">', 1)[1].split("<", 1)[0]
    assert (
        await client.post("/v1/events", json=event_body(), headers=auth(new_key))
    ).status_code == 201
    assert new_key not in (await client.get("/console/keys")).text
    listed = (await client.get("/v1/keys", headers=auth(admin))).json()["keys"]
    key_id = next(k["id"] for k in listed if k["name"] == "ci")
    revoked = await post_form(client, f"/console/keys/{key_id}/revoke", csrf)
    assert revoked.status_code == 303
    assert (
        await client.post("/v1/events", json=event_body(), headers=auth(new_key))
    ).status_code == 401
    hidden = (await client.get("/console/keys")).text
    assert f"/keys/{key_id}/" not in hidden
    assert '<tr class="revoked">' not in hidden
    shown = (await client.get("/console/keys?revoked=true")).text
    assert shown.count('<tr class="revoked">') == 1


async def test_the_overview_counts_the_last_hour(client, database_url):
    key = await make_key(database_url)
    await client.post("/v1/endpoints", json={"url": "https://a.example/h"}, headers=auth(key))
    for _ in range(3):
        assert (await client.post("/v1/events", json=event_body(), headers=auth(key))).is_success
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE deliveries SET status = 'dead'")
    await sign_in(client, key)
    page = (await client.get("/console/")).text
    assert 'id="events-last-hour">3<' in page
    assert 'id="deliveries-last-hour">3<' in page
    assert 'id="dead-letters">3<' in page
    assert page.count('<rect class="events"') == 60
    assert '<meta http-equiv="refresh"' in page


async def test_a_rare_filter_reads_the_window_a_bounded_page_at_a_time(
    client, database_url, monkeypatch
):
    monkeypatch.setattr(event_search, "SCAN_LIMIT", 3)
    key = await make_key(database_url)
    rare = await client.post(
        "/v1/events", json=event_body(event_type="rare.one"), headers=auth(key)
    )
    for _ in range(7):
        assert (await client.post("/v1/events", json=event_body(), headers=auth(key))).is_success
    await sign_in(client, key)
    path, pages = "/console/events?event_type=rare.one", 0
    while rare.json()["event_id"] not in (page := (await client.get(path)).text):
        assert 'id="read-on"' in page
        path = html.unescape(page.split('<p class="more"><a href="', 1)[1].split('"', 1)[0])
        pages += 1
    assert pages == 2  # 3 + 3 newer events read before the page that holds it
    assert 'id="read-on"' not in (await client.get(path)).text


async def test_a_destination_config_is_set_in_the_form_and_never_shown(client, database_url):
    key = await make_key(database_url)
    csrf = await sign_in(client, key)
    config = '{"auth": {"type": "bearer", "token": "tok-never-shown"}, "headers": {"X-A": "b"}}'
    created = await post_form(
        client, "/console/endpoints", csrf, kind="http", url="https://a.example/h", config=config
    )
    assert created.status_code == 303, created.text
    page_path = created.headers["location"].split("?")[0]
    page = (await client.get(page_path)).text
    assert 'id="endpoint-kind">http<' in page
    assert "bearer" in page
    assert "tok-never-shown" not in page
    form = (await client.get(f"{page_path}/edit")).text
    assert "tok-never-shown" not in form
    # Saved with the config left empty: the stored one, credentials included, stays.
    saved = await post_form(client, page_path, csrf, kind="http", url="https://b.example/h")
    assert saved.status_code == 303
    endpoint_id = page_path.rsplit("/", 1)[1]
    shown = (await client.get(f"/v1/endpoints/{endpoint_id}", headers=auth(key))).json()
    assert shown["config"]["auth"] == {"type": "bearer"}
    assert shown["url"] == "https://b.example/h"
    for fields in (
        {"kind": "http", "url": "https://a.example/", "config": "{nope"},
        {"kind": "http", "url": "https://a.example/", "config": '{"headers": {"Host": "x"}}'},
        {"kind": "redis", "config": '{"url": "redis://127.0.0.1:6379/0", "stream": "s"}'},
        {"kind": "http", "config": "{}"},
    ):
        answer = await post_form(client, "/console/endpoints", csrf, **fields)
        assert answer.status_code == 400, (fields, answer.text[:300])
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM endpoints").fetchone() == (1,)


async def test_a_refused_endpoint_form_comes_back_filled_in_with_the_error_at_its_field(
    client, database_url
):
    key = await make_key(database_url)
    csrf = await sign_in(client, key)
    config = '{"headers": {"Host": "x"}, "auth": {"type": "bearer", "token": "tok-typed-secret"}}'
    answer = await post_form(
        client,
        "/console/endpoints",
        csrf,
        kind="http",
        url="https://keep.example/x",
        description="kept as typed",
        config=config,
    )
    assert answer.status_code == 400
    page = answer.text
    assert 'value="https://keep.example/x"' in page
    assert 'value="kept as typed"' in page
    assert 'id="error-config"' in page
    assert "Host" in page.split('id="error-config"', 1)[1].split("</span>", 1)[0]
    assert "tok-typed-secret" not in page  # a config may hold credentials: never echoed
    bad_url = await post_form(client, "/console/endpoints", csrf, kind="http", url="ftp://x")
    assert 'id="error-url"' in bad_url.text
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM endpoints").fetchone() == (0,)
