"""Fan-out by subscription keys: type patterns and channels, checked against every pairing."""

from __future__ import annotations

import itertools

import psycopg

from tests.helpers import auth, event_body, make_key

PATTERNS = [[], ["*"], ["a.b.c"], ["a.*"], ["a.b.*"], ["b.*", "a.b.c"], ["a"], ["a.b.c.d"]]
ENDPOINT_CHANNELS = [[], ["c1"], ["c2", "c3"]]
EVENT_TYPES = ["a", "a.b", "a.b.c", "a.b.c.d", "b.x", "ab.c", "a.bc"]
EVENT_CHANNELS = [[], ["c1"], ["c3", "c9"], ["c9"]]


def takes(patterns: list[str], channels: list[str], event_type: str, carried: list[str]) -> bool:
    """The rule as documented: type by exact name, `prefix.*` or `*`; channels must share one."""
    by_type = not patterns or any(
        p in ("*", event_type) or (p.endswith(".*") and event_type.startswith(p[:-1]))
        for p in patterns
    )
    return by_type and (not channels or bool(set(channels) & set(carried)))


async def _endpoint(client, key: str, **fields) -> str:
    body = {"url": "https://example.com/hook", **fields}
    response = await client.post("/v1/endpoints", json=body, headers=auth(key))
    assert response.status_code == 201, response.text
    return response.json()["endpoint"]["id"]


def _deliveries(database_url: str) -> set[tuple[str, str]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT endpoint_id::text, event_id::text FROM deliveries").fetchall()
    return set(rows)


async def test_every_endpoint_gets_exactly_the_events_its_types_and_channels_take(
    client, database_url
):
    key = await make_key(database_url)
    other = await make_key(database_url, tenant="other")
    endpoints = {}
    for patterns, channels in itertools.product(PATTERNS, ENDPOINT_CHANNELS):
        endpoint_id = await _endpoint(client, key, event_types=patterns, channels=channels)
        endpoints[endpoint_id] = (patterns, channels)
        # The same subscriptions in another tenant must receive nothing of this one's.
        await _endpoint(client, other, event_types=patterns, channels=channels)
    cases = list(itertools.product(EVENT_TYPES, EVENT_CHANNELS))
    batch = [
        event_body(event_type=t, channels=c, payload={"i": i}) for i, (t, c) in enumerate(cases)
    ]
    response = await client.post("/v1/events/batch", json={"events": batch}, headers=auth(key))
    assert response.status_code == 201, response.text
    event_ids = [item["event_id"] for item in response.json()["events"]]
    expected = {
        (endpoint_id, event_id)
        for endpoint_id, (patterns, channels) in endpoints.items()
        for event_id, (event_type, carried) in zip(event_ids, cases, strict=True)
        if takes(patterns, channels, event_type, carried)
    }
    assert len(expected) > 100  # the grid exercises matches and misses alike
    assert _deliveries(database_url) == expected


async def test_single_event_with_channels_reaches_only_that_channel(client, database_url):
    key = await make_key(database_url)
    customer_1 = await _endpoint(client, key, channels=["customer-1"])
    customer_2 = await _endpoint(client, key, channels=["customer-2"])
    everyone = await _endpoint(client, key)
    body = event_body(channels=["customer-1"])
    response = await client.post("/v1/events", json=body, headers=auth(key))
    assert response.status_code == 201
    event_id = response.json()["event_id"]
    assert _deliveries(database_url) == {(customer_1, event_id), (everyone, event_id)}
    assert customer_2 not in {endpoint for endpoint, _ in _deliveries(database_url)}
    stored = await client.get(f"/v1/events/{event_id}", headers=auth(key))
    assert stored.json()["channels"] == ["customer-1"]


async def test_changing_an_endpoints_channels_changes_what_it_receives(client, database_url):
    key = await make_key(database_url)
    endpoint_id = await _endpoint(client, key, channels=["old"])
    patch = {"channels": ["new"], "event_types": ["invoice.*"]}
    response = await client.patch(f"/v1/endpoints/{endpoint_id}", json=patch, headers=auth(key))
    assert response.status_code == 200
    assert response.json()["channels"] == ["new"]
    for channels in (["old"], ["new"]):
        await client.post("/v1/events", json=event_body(channels=channels), headers=auth(key))
    with psycopg.connect(database_url) as conn:
        carried = conn.execute(
            "SELECT e.channels FROM deliveries d JOIN events e ON e.id = d.event_id"
        ).fetchall()
    assert carried == [(["new"],)]


async def test_a_deleted_endpoint_matches_nothing(client, database_url):
    key = await make_key(database_url)
    endpoint_id = await _endpoint(client, key)
    await client.delete(f"/v1/endpoints/{endpoint_id}", headers=auth(key))
    await client.post("/v1/events", json=event_body(), headers=auth(key))
    assert _deliveries(database_url) == set()


async def test_channels_are_checked(client, database_url):
    key = await make_key(database_url)
    refused = [
        ("/v1/events", event_body(channels=["has space"])),
        ("/v1/events", event_body(channels=[f"c{i}" for i in range(11)])),
        ("/v1/events", event_body(channels=["x" * 129])),
        ("/v1/endpoints", {"url": "https://example.com/h", "channels": [""]}),
        ("/v1/endpoints", {"url": "https://example.com/h", "channels": "c1"}),
    ]
    for path, body in refused:
        response = await client.post(path, json=body, headers=auth(key))
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["code"] == "validation_error"
    inbox = await client.get("/v1/inbox", params={"channel": "a b"}, headers=auth(key))
    assert inbox.status_code == 400
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM endpoints").fetchone() == (0,)
