"""GET /metrics: every metric family, its token, and figures added up across API processes."""

from __future__ import annotations

import httpx
import msgspec
import psycopg
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from tests.helpers import (
    add_endpoint,
    api_process,
    auth,
    event_body,
    make_key,
    running_worker,
    wait_for,
)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a scrape by (name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(client) -> dict:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(response.text)


async def test_every_metric_family_moves_with_what_happens(
    settings, database_url, receiver, worker_env
):
    fresh = msgspec.structs.replace(settings, metrics_cache_seconds=0.0)
    async with AsyncTestClient(app=create_app(fresh)) as client:
        await _every_family(client, database_url, receiver)


async def _every_family(client, database_url, receiver) -> None:
    key = await make_key(database_url)
    before = await scrape(client)
    await add_endpoint(client, key, receiver, "hooks")
    disabled = await add_endpoint(client, key, receiver, "paused")
    await client.post(f"/v1/endpoints/{disabled['id']}/disable", headers=auth(key))
    for _ in range(3):
        assert (
            await client.post("/v1/events", json=event_body(), headers=auth(key))
        ).status_code == 201
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE deliveries SET status = 'dead' WHERE id = (SELECT id FROM deliveries"
            " WHERE endpoint_id = %s LIMIT 1)",
            [disabled["id"]],
        )
    pending = await scrape(client)
    route = {"method": "POST", "route": "/v1/events"}
    assert (
        value(pending, "eventgate_http_requests_total", **route, status="201")
        - value(before, "eventgate_http_requests_total", **route, status="201")
        == 3
    )
    assert value(pending, "eventgate_http_request_duration_seconds_count", **route) >= 3
    assert (
        value(pending, "eventgate_events_ingested_total")
        - value(before, "eventgate_events_ingested_total")
        == 3
    )
    assert value(pending, "eventgate_deliveries_due", queue="default") == 3
    assert value(pending, "eventgate_delivery_backlog_seconds", queue="default") >= 0
    assert value(pending, "eventgate_endpoints", state="disabled") == 1
    assert value(pending, "eventgate_dead_letters") == 1
    assert value(pending, "eventgate_db_pool_connections", state="size") >= 1
    tables = {
        dict(labels)["table"] for name, labels in pending if name == "eventgate_partition_bytes"
    }
    assert tables == {"events", "deliveries", "delivery_attempts"}
    async with running_worker():
        await wait_for(lambda: len(receiver.at("hooks")) == 3, what="three deliveries")
        succeeded = {"kind": "http", "outcome": "succeeded"}
        await wait_for(
            lambda: (
                value(samples_now(), "eventgate_deliveries_total", **succeeded)
                - value(before, "eventgate_deliveries_total", **succeeded)
                == 3
            ),
            what="three deliveries counted",
        )
    delivered = await scrape(client)
    assert (
        value(delivered, "eventgate_event_to_delivered_seconds_count")
        - value(before, "eventgate_event_to_delivered_seconds_count")
        == 3
    )


def samples_now() -> dict:
    from core.metrics import render_process_metrics

    return samples(render_process_metrics().decode())


async def test_429s_are_counted_by_policy(settings, database_url):
    strict = create_app(msgspec.structs.replace(settings, anonymous_per_minute=1))
    async with AsyncTestClient(app=strict) as client:
        before = await scrape(client)
        for _ in range(3):
            await client.get("/v1/keys", headers=auth("eg_nope"))
        after = await scrape(client)
    refused = value(after, "eventgate_rate_limited_total", policy="anonymous")
    assert refused - value(before, "eventgate_rate_limited_total", policy="anonymous") == 2


async def test_a_metrics_token_is_required_when_set(settings):
    guarded = create_app(msgspec.structs.replace(settings, metrics_token="s3cret"))
    async with AsyncTestClient(app=guarded) as client:
        assert (await client.get("/metrics")).status_code == 401
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = await client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
        assert right.status_code == 200
        assert "s3cret" not in right.text


def test_serve_with_two_processes_adds_their_figures_up(database_url, tmp_path):
    serving = api_process(database_url, workers=2, TMPDIR=str(tmp_path))
    with serving as base, httpx.Client() as http:
        assert [p.name[:18] for p in tmp_path.iterdir()] == ["eventgate-metrics-"]
        for _ in range(40):  # new connections: uvicorn's processes share the socket
            http.get(f"{base}/health/live", headers={"Connection": "close"})
        first = samples(http.get(f"{base}/metrics").text)
        second = samples(http.get(f"{base}/metrics").text)
    assert list(tmp_path.iterdir()) == []  # the processes' metric files go when serving ends
    route = {"method": "GET", "route": "/health/live", "status": "200"}
    # Whichever process answers the scrape, the count is the sum over both.
    assert value(first, "eventgate_http_requests_total", **route) == 40
    assert value(second, "eventgate_http_requests_total", **route) == 40


async def test_figures_are_exported_at_zero_and_statuses_are_the_ones_sent(settings, database_url):
    from core.metrics import RATE_LIMIT_POLICIES
    from core.queues import DELIVERY_QUEUES

    fresh = msgspec.structs.replace(settings, metrics_cache_seconds=0.0)
    async with AsyncTestClient(app=create_app(fresh)) as client:
        response = await client.get("/metrics")
        assert response.headers["content-type"].count("charset") == 1
        found = samples(response.text)
        for queue in DELIVERY_QUEUES:
            assert ("eventgate_deliveries_due", (("queue", queue),)) in found
            assert ("eventgate_delivery_backlog_seconds", (("queue", queue),)) in found
        for policy in RATE_LIMIT_POLICIES:
            assert ("eventgate_rate_limited_total", (("policy", policy),)) in found
        client.follow_redirects = False
        before = value(
            found, "eventgate_http_requests_total", method="GET", route="/console", status="303"
        )
        assert (await client.get("/console/")).status_code == 303
        after = samples((await client.get("/metrics")).text)
        assert (
            value(
                after, "eventgate_http_requests_total", method="GET", route="/console", status="303"
            )
            == before + 1
        )
        assert (
            value(
                after, "eventgate_http_requests_total", method="GET", route="/console", status="500"
            )
            == 0
        )
