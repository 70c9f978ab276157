"""The console's lists answer a person's questions: which endpoint and event type each
delivery is, found by typing part of an endpoint's URL or description; revoked keys kept out
of the way."""

from __future__ import annotations

import psycopg

from app.console.schema_examples import example_of
from app.deliveries import services as delivery_services
from tests.app.console.helpers import post_form, sign_in
from tests.app.console.test_portal import endpoint_for, portal_for
from tests.helpers import auth, event_body, make_key


async def endpoint(client, key: str, url: str, description: str = "", **extra) -> str:
    body = {"url": url, "description": description, **extra}
    created = await client.post("/v1/endpoints", json=body, headers=auth(key))
    assert created.status_code == 201, created.text
    return created.json()["endpoint"]["id"]


async def test_deliveries_show_endpoint_and_type_and_filter_by_typed_text(client, database_url):
    key = await make_key(database_url)
    alpha = await endpoint(
        client, key, "https://alpha.example/h", "Alpha CRM", event_types=["invoice.paid"]
    )
    beta = await endpoint(client, key, "https://beta.example/h", event_types=["order.placed"])
    for event_type in ("invoice.paid", "order.placed"):
        sent = await client.post(
            "/v1/events", json=event_body(event_type=event_type), headers=auth(key)
        )
        assert sent.status_code == 201
    await sign_in(client, key)
    listed = (await client.get("/console/deliveries")).text
    assert "Alpha CRM" in listed
    assert "https://beta.example/h" in listed  # no description: its URL
    assert "invoice.paid" in listed
    assert "order.placed" in listed
    assert f'<option value="{alpha}">Alpha CRM</option>' in listed  # picked by name
    only_beta = (await client.get("/console/deliveries?endpoint=BETA.example")).text
    assert "order.placed" in only_beta
    assert "invoice.paid" not in only_beta
    by_id = (await client.get(f"/console/deliveries?endpoint={beta}")).text
    assert "order.placed" in by_id
    assert "Alpha CRM" not in by_id.split("<datalist", 1)[0]
    nothing = (await client.get("/console/deliveries?endpoint=%25_nowhere")).text
    assert "No deliveries." in nothing


async def test_a_portals_filter_finds_only_its_channels_endpoints(client, database_url):
    key = await make_key(database_url)
    await endpoint_for(client, key, "cust-1", "https://mine.example/h")
    await endpoint_for(client, key, "cust-2", "https://neighbour.example/h")
    await client.post(
        "/v1/events", json=event_body(channels=["cust-1", "cust-2"]), headers=auth(key)
    )
    portal = await portal_for(client, key, "cust-1")
    mine = (await client.get(f"{portal}/deliveries?endpoint=example")).text
    assert "https://mine.example/h" in mine
    assert "neighbour" not in mine
    theirs = await client.get(f"{portal}/deliveries?endpoint=neighbour")
    assert "No deliveries." in theirs.text


async def test_an_event_shows_how_its_deliveries_stand(client, database_url):
    key = await make_key(database_url)
    await endpoint(client, key, "https://one.example/h")
    await endpoint(client, key, "https://two.example/h")
    sent = await client.post("/v1/events", json=event_body(), headers=auth(key))
    event_id = sent.json()["event_id"]
    await sign_in(client, key)
    page = f"/console/events/{event_id}"
    assert ">delivering</span>" in (await client.get(page)).text
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE deliveries SET status = 'succeeded'")
    assert ">delivered</span>" in (await client.get(page)).text
    listed = (await client.get("/console/events")).text
    assert ">delivered</span>" in listed
    assert "2/2" in listed
    assert "not acknowledged" in (await client.get(page)).text  # the inbox, said apart
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE deliveries SET status = 'dead' WHERE id = (SELECT id FROM deliveries ORDER BY id LIMIT 1)"
        )
    assert ">dead</span>" in (await client.get("/console/events")).text


async def test_a_retry_says_when_it_really_goes_out_and_why(client, database_url):
    key = await make_key(database_url)
    endpoint_id = await endpoint(client, key, "https://held.example/h")
    await client.post("/v1/events", json=event_body(), headers=auth(key))
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE deliveries SET status = 'dead'")
        conn.execute(
            "UPDATE endpoints SET circuit_open_until = now() + interval '60 seconds',"
            " consecutive_failures = 5, failing_since = now()"
        )
        [(delivery_id,)] = conn.execute("SELECT id FROM deliveries").fetchall()
    csrf = await sign_in(client, key)
    retried = await post_form(client, f"/console/deliveries/{delivery_id}/retry", csrf)
    assert retried.headers["location"].endswith("?notice=retried_circuit")
    page = (await client.get(retried.headers["location"])).text
    assert "circuit is open" in page
    assert "with the endpoint's next probe, from" in page
    assert "after 5 failures in a row" in page
    shown = (await client.get(f"/v1/endpoints/{endpoint_id}", headers=auth(key))).json()
    assert shown["circuit"] == "open"
    assert shown["circuit_open_until"] is not None
    disabled = await client.post(f"/v1/endpoints/{endpoint_id}/disable", headers=auth(key))
    assert disabled.status_code == 200, disabled.text
    assert (
        "when the endpoint is enabled"
        in (await client.get(f"/console/deliveries/{delivery_id}")).text
    )


async def test_dead_deliveries_of_a_filter_are_retried_together_bounded_and_audited(
    client, database_url, monkeypatch
):
    monkeypatch.setattr(delivery_services, "BULK_RETRY_LIMIT", 2)
    key = await make_key(database_url)
    await endpoint(client, key, "https://alpha.example/h")
    await endpoint(client, key, "https://beta.example/h")
    for _ in range(3):
        await client.post("/v1/events", json=event_body(), headers=auth(key))
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE deliveries SET status = 'dead'")
    csrf = await sign_in(client, key)
    listed = (await client.get("/console/deliveries?status=dead&endpoint=alpha")).text
    assert "Retry every dead delivery of this list" in listed
    retried = await post_form(
        client, "/console/deliveries/retry", csrf, status="dead", endpoint="alpha"
    )
    assert retried.status_code == 303
    assert "notice=bulk_retried" in retried.headers["location"]
    with psycopg.connect(database_url) as conn:
        by_url = dict(
            conn.execute(
                "SELECT e.url, array_agg(DISTINCT d.status) FROM deliveries d"
                " JOIN endpoints e ON e.id = d.endpoint_id GROUP BY e.url"
            ).fetchall()
        )
    assert by_url == {
        "https://alpha.example/h": ["dead", "pending"],  # two of three: the bound
        "https://beta.example/h": ["dead"],
    }
    entries = (
        await client.get("/v1/audit-logs?action=delivery.bulk_retry", headers=auth(key))
    ).json()
    assert entries["entries"][0]["after"] == {"status": "dead", "endpoints": 1, "retried": 2}
    refused = await post_form(
        client, "/console/deliveries/retry", csrf, status="succeeded", endpoint=""
    )
    assert refused.status_code == 400


async def test_events_are_found_by_a_value_in_their_payload(client, database_url):
    key = await make_key(database_url)
    for payload in ({"customer": {"id": 42, "tier": "gold"}}, {"customer": {"id": 7}}, {"n": "42"}):
        await client.post("/v1/events", json=event_body(payload=payload), headers=auth(key))
    await sign_in(client, key)

    async def found(path: str, value: str) -> int:
        answer = await client.get("/console/events", params={"path": path, "value": value})
        assert answer.status_code == 200, answer.text
        return answer.text.count('<tr>\n  <td><a href="/console/events/')

    assert await found("customer.id", "42") == 1
    assert await found("customer.tier", "gold") == 1  # not JSON: a string
    assert await found("n", "42") == 0  # 42 is a number; the payload holds the string
    assert await found("n", '"42"') == 1
    assert await found("customer.id", "1e999") == 0  # no number that large: a string, no error
    for path, value in (("a." * 11 + "b", "1"), ("a..b", "1"), ("a", "x\x00y")):
        refused = await client.get("/console/events", params={"path": path, "value": value})
        assert refused.status_code == 400, (path, refused.text)


async def test_a_portal_publishes_the_event_type_catalogue_with_examples(client, database_url):
    key = await make_key(database_url)
    schema = {
        "type": "object",
        "properties": {
            "amount": {"type": "integer"},
            "currency": {"enum": ["EUR", "USD"]},
            "paid_at": {"type": "string", "format": "date-time"},
            "lines": {
                "type": "array",
                "items": {"type": "object", "properties": {"sku": {"type": "string"}}},
            },
        },
    }
    body = {"name": "invoice.paid", "description": "An invoice was paid", "schema": schema}
    assert (await client.post("/v1/event-types", json=body, headers=auth(key))).status_code == 201
    old = {"name": "legacy.thing", "description": "gone"}
    assert (await client.post("/v1/event-types", json=old, headers=auth(key))).status_code == 201
    await client.patch("/v1/event-types/legacy.thing", json={"archived": True}, headers=auth(key))
    portal = await portal_for(client, key, "cust-1")
    page = (await client.get(f"{portal}/event-types")).text
    assert "An invoice was paid" in page
    assert "&#34;currency&#34;: &#34;EUR&#34;" in page
    assert "&#34;amount&#34;: 0" in page
    assert "2026-01-31T12:00:00Z" in page
    assert "legacy.thing" not in page  # archived: not offered
    assert ">Event types<" in page  # in the portal's menu


def test_an_example_of_a_hostile_schema_is_bounded():
    deep: dict = {"type": "object", "properties": {}}
    cursor = deep
    for _ in range(5000):
        child: dict = {"type": "object", "properties": {}}
        cursor["properties"]["x"] = child
        cursor = child
    assert isinstance(example_of(deep), dict)
    assert example_of({"$ref": "https://evil.example/schema"}) is None  # nothing is fetched
    assert example_of({"type": ["null", "integer"]}) == 0
