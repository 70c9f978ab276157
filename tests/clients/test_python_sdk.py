"""The Python SDK (clients/python) against a live `eventgate serve`: coverage of the live
OpenAPI, typed calls, pages, errors, retries that honour Retry-After without storing twice,
the live stream, and webhook verification of real deliveries."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time

import httpx
import psycopg
import pytest
from eventgate_client import (
    AsyncClient,
    BadRequest,
    Client,
    NotFound,
    WebhookVerificationError,
    verify_webhook,
)

from tests.helpers import ROOT, api_process, make_key, running_receiver, running_worker, wait_for


def _live_operations(base: str) -> list[tuple[str, dict]]:
    document = httpx.get(f"{base}/openapi.json").json()
    return [
        (spec["operationId"], spec)
        for methods in document["paths"].values()
        for spec in methods.values()
    ]


def test_every_operation_of_the_live_api_has_a_method_in_both_clients(database_url):
    with api_process(database_url) as base:
        operations = _live_operations(base)
    names = [name for name, _ in operations]
    assert len(names) == len(set(names)) >= 60
    missing = [n for n in names if not (hasattr(Client, n) and hasattr(AsyncClient, n))]
    assert missing == [], f"regenerate: uv run python clients/generate.py ({missing})"
    paged = [
        name
        for name, spec in operations
        if any(p["name"] == "cursor" for p in spec.get("parameters", []))
        and name != "stream_events"
    ]
    assert all(hasattr(Client, "iter_" + n.removeprefix("list_")) for n in paged), paged


def test_calls_pages_and_errors_of_the_sync_client(database_url):
    key = asyncio.run(make_key(database_url))
    with api_process(database_url) as base, Client(base, key) as client:
        accepted = client.ingest_batch(
            {
                "events": [
                    {"source": "s", "event_type": "t", "payload": {"n": n}} for n in range(120)
                ]
            }
        )
        assert accepted["count"] == 120
        first = accepted["events"][0]["event_id"]
        assert client.get_event(first)["payload"] == {"n": 0}
        pending = list(client.iter_inbox(limit=50))  # three pages
        assert [e["payload"]["n"] for e in pending] == list(range(120))
        assert client.ack_event(first)["status"] == "acknowledged"
        with pytest.raises(NotFound) as missing:
            client.get_event("01a244e5-dbc4-7532-9c7c-9b154e8c579d")
        assert missing.value.code == "not_found"
        assert missing.value.request_id
        with pytest.raises(BadRequest) as refused:
            client.ingest_event({"source": "s", "event_type": "t", "payload": []})  # type: ignore[typeddict-item]
        assert refused.value.status == 400
        assert "payload" in refused.value.message


def test_rate_limited_posts_are_retried_after_retry_after_and_stored_once(database_url):
    env = {**os.environ, "EVENTGATE_DATABASE_URL": database_url}
    subprocess.run(
        [sys.executable, "-m", "cli", "rate-limits", "set-tier", "tight", "--burst", "2"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    key = asyncio.run(make_key(database_url, rate_limit_tier="tight"))
    with api_process(database_url) as base, Client(base, key, max_retries=5) as client:
        started = time.monotonic()
        for n in range(6):
            client.ingest_event({"source": "s", "event_type": "t", "payload": {"n": n}})
        elapsed = time.monotonic() - started
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        refused = conn.execute("SELECT count(*) FROM request_logs WHERE status = 429").fetchone()[0]
    assert stored == 6
    assert refused >= 1  # it was refused, and then waited for Retry-After
    assert elapsed >= 1.0


async def test_the_async_client_and_the_stream_resume(database_url):
    key = await make_key(database_url)
    with api_process(database_url) as base:
        async with AsyncClient(base, key) as client:
            received = []

            async def follow() -> None:
                async for item in client.stream_events(event_type="order.paid"):
                    received.append(item)
                    if len(received) == 3:
                        return

            task = asyncio.create_task(follow())
            await wait_for(lambda: _open_streams(database_url) == 1)
            ids = [
                (await client.ingest_event({"source": "s", "event_type": t, "payload": {}}))[
                    "event_id"
                ]
                for t in ("order.paid", "other", "order.paid", "order.paid")
            ]
            await asyncio.wait_for(task, 20)
            assert [r.event["id"] for r in received] == [ids[0], ids[2], ids[3]]
            later = await client.ingest_event(
                {"source": "s", "event_type": "order.paid", "payload": {}}
            )
            resumed = client.stream_events(last_event_id=received[1].id)
            got = [await anext(resumed), await anext(resumed)]
            await resumed.aclose()
            assert [g.event["id"] for g in got] == [ids[3], later["event_id"]]


def test_the_sync_stream_follows_new_events(database_url):
    key = asyncio.run(make_key(database_url))
    with api_process(database_url) as base, Client(base, key) as client:
        received: list[str] = []

        def follow() -> None:
            for item in client.stream_events():
                received.append(item.event["id"])
                if len(received) == 2:
                    return

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        asyncio.run(wait_for(lambda: _open_streams(database_url) == 1))
        with Client(base, key) as other:
            ids = [
                other.ingest_event({"source": "s", "event_type": "t", "payload": {}})["event_id"]
                for _ in range(2)
            ]
        thread.join(20)
        assert received == ids


async def test_verify_webhook_accepts_real_deliveries_of_both_schemes_and_nothing_else(
    database_url, worker_env
):
    key = await make_key(database_url)
    with api_process(database_url) as base:
        async with running_receiver() as receiver, AsyncClient(base, key) as client:
            hmac_endpoint = await client.create_endpoint(
                {"url": receiver.endpoint_url("hmac"), "event_types": ["t"]}
            )
            ed_endpoint = await client.create_endpoint(
                {
                    "url": receiver.endpoint_url("ed"),
                    "event_types": ["t"],
                    "signature_scheme": "v1a",
                }
            )
            async with running_worker():
                await client.ingest_event({"source": "s", "event_type": "t", "payload": {"a": 1}})
                await wait_for(lambda: len(receiver.received) == 2)
    hmac_secret = hmac_endpoint["secret"]
    public_key = ed_endpoint["endpoint"]["public_key"]
    (signed_hmac,) = receiver.at("hmac")
    (signed_ed,) = receiver.at("ed")
    assert verify_webhook(signed_hmac.raw, signed_hmac.headers, hmac_secret)["payload"] == {"a": 1}
    assert verify_webhook(signed_ed.raw, signed_ed.headers, public_key)["payload"] == {"a": 1}
    for raw, headers, secret in (
        (signed_hmac.raw + b" ", signed_hmac.headers, hmac_secret),
        (signed_ed.raw, signed_ed.headers, hmac_secret),
        (signed_hmac.raw, signed_hmac.headers, public_key),
        (signed_hmac.raw, {**signed_hmac.headers, "webhook-timestamp": "1000"}, hmac_secret),
        (signed_hmac.raw, {}, hmac_secret),
    ):
        with pytest.raises(WebhookVerificationError):
            verify_webhook(raw, headers, secret)


def _open_streams(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM event_streams").fetchone()[0]
