"""Cost against tenant size: the inbox at 1M pending events for each filter kind, ingest
into tenants with 0, 1,000 and 10,000 endpoints (none matching, or one by channel), and the
claim of due deliveries beside 1M scheduled ones (bench/scheduled_claims.py).

    uv run python bench/scale.py [--pending 1000000] [--requests 300] [--scheduled 1000000]
    uv run python bench/scale.py --only scheduled

Starts `eventgate dev` with a throw-away data dir, fills it by SQL, then times real HTTP
requests one at a time (latency, not throughput). Each figure is printed with its ratio to
the unfiltered inbox page or to ingest into a tenant with no endpoints, measured in the same
run; ingest cases run in interleaved rounds so drift hits them alike.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import psycopg

sys.path.insert(0, str(Path(__file__).parent.parent))

from app.keys import services as keys
from bench import scheduled_claims
from bench.common import dev_or_given, tenant_of
from db import tenants

# One pending event in a hundred has source `one-percent` and channel `c-1pct`; one in ten
# thousand has type `rare.type` and channel `c-rare`; no event has `nobody`.
FILL = """
INSERT INTO events (id, tenant_id, source, event_type, payload, channels, created_at)
SELECT eventgate_uuidv7(now()), %(tenant_id)s,
       CASE WHEN i %% 100 = 0 THEN 'one-percent' ELSE 'common' END,
       CASE WHEN i %% 10000 = 1 THEN 'rare.type' ELSE 'common.type' END,
       '{"n": 1}',
       CASE WHEN i %% 100 = 2 THEN ARRAY['c-1pct'] WHEN i %% 10000 = 3 THEN ARRAY['c-rare']
            ELSE ARRAY['c-common'] END,
       now()
FROM generate_series(%(start)s, %(stop)s) AS i
"""
# Endpoints that take none of the benchmark's events (each its own type), or one channel each;
# paused and never signing, so their secret is a placeholder, not a sealed value.
ENDPOINTS = """
INSERT INTO endpoints (id, tenant_id, url, event_types, channels, secret_encrypted, is_active)
SELECT eventgate_uuidv7(now()), %(tenant_id)s, 'https://example.com/' || i,
       CASE WHEN %(by_channel)s THEN '{}'::text[] ELSE ARRAY['other' || i || '.*'] END,
       CASE WHEN %(by_channel)s THEN ARRAY['customer-' || i] ELSE '{}'::text[] END,
       '\\x00'::bytea, false
FROM generate_series(1, %(count)s) AS i
"""
# Ten endpoints that take every event, paused so that no delivery is sent during the run.
MATCHING = """
INSERT INTO endpoints (id, tenant_id, url, event_types, secret_encrypted, is_active)
SELECT eventgate_uuidv7(now()), %(tenant_id)s, 'https://example.com/m' || i, ARRAY['scale.*'],
       '\\x00'::bytea, false
FROM generate_series(1, 10) AS i
"""
INBOX_CASES = [
    ("inbox first page, no filter", {}),
    ("inbox source=, 1 % of pending", {"source": "one-percent"}),
    ("inbox source=, no match", {"source": "nobody"}),
    ("inbox event_type=, 0.01 %", {"event_type": "rare.type"}),
    ("inbox event_type=, no match", {"event_type": "nobody"}),
    ("inbox channel=, 1 %", {"channel": "c-1pct"}),
    ("inbox channel=, 0.01 %", {"channel": "c-rare"}),
    ("inbox channel=, no match", {"channel": "nobody"}),
]
EVENT = {"source": "scale", "event_type": "scale.created", "payload": {"n": 1}}


async def timed(
    session: aiohttp.ClientSession, method: str, url: str, kw: dict | None = None
) -> float:
    kw = kw or {}
    started = time.perf_counter()
    async with session.request(method, url, **kw) as response:
        await response.read()
        assert response.status < 300, (response.status, await response.text())
    return (time.perf_counter() - started) * 1000


def quantiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=20)
    return statistics.median(samples), cuts[18]


async def new_tenant(database_url: str, name: str, endpoints: int, by_channel: bool) -> str:
    """A tenant with `endpoints` endpoints and an unlimited key; returns the key."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        tenant, _ = await tenants.create_or_get(conn, name)
        params = {"tenant_id": tenant.id, "count": endpoints, "by_channel": by_channel}
        await conn.execute(ENDPOINTS, params)
        if name.startswith("batch-"):
            await conn.execute(MATCHING, {"tenant_id": tenant.id})
        created = await keys.issue(
            conn,
            tenant_id=tenant.id,
            name="scale",
            scopes=["events:write", "events:read"],
            rate_limit_tier="unlimited",
        )
        await conn.execute("ANALYZE endpoints")
    return created.key


def fill(database_url: str, tenant_id: uuid.UUID, pending: int) -> float:
    started = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        for start in range(1, pending + 1, 100_000):
            stop = min(start + 99_999, pending)
            conn.execute(FILL, {"tenant_id": tenant_id, "start": start, "stop": stop})
        conn.execute("VACUUM ANALYZE events")
    return time.perf_counter() - started


async def inbox(url: str, key: str, requests: int) -> None:
    headers = {"X-API-Key": key}
    async with aiohttp.ClientSession(headers=headers) as session:
        base = None
        for label, params in INBOX_CASES:
            for _ in range(20):  # warm: caches, prepared statements
                await timed(session, "GET", f"{url}/v1/inbox", {"params": params})
            samples = [
                await timed(session, "GET", f"{url}/v1/inbox", {"params": params})
                for _ in range(requests)
            ]
            p50, p95 = quantiles(samples)
            base = base or p50
            print(f"{label:42} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  ratio {p50 / base:4.2f}")


async def ingest(url: str, cases: dict[str, tuple[str, dict]], requests: int) -> dict[str, list]:
    samples: dict[str, list[float]] = {label: [] for label in cases}
    async with aiohttp.ClientSession() as session:
        for key, body in cases.values():  # warm
            for _ in range(10):
                await timed(session, "POST", *_post(url, key, body))
        for _ in range(10):  # interleaved rounds
            for label, (key, body) in cases.items():
                for _ in range(max(1, requests // 10)):
                    samples[label].append(await timed(session, "POST", *_post(url, key, body)))
    return samples


def _post(url: str, key: str, body: dict) -> tuple[str, dict]:
    path = "/v1/events/batch" if "events" in body else "/v1/events"
    return f"{url}{path}", {"json": body, "headers": {"X-API-Key": key}}


def report(samples: dict[str, list[float]], base_label: str) -> None:
    base = statistics.median(samples[base_label])
    for label, values in samples.items():
        p50, p95 = quantiles(values)
        print(f"{label:42} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  ratio {p50 / base:4.2f}")


async def main(args: argparse.Namespace) -> None:
    with dev_or_given(args) as (url, key, database_url):
        scheduled_claims.measure(database_url, args.scheduled)
        if args.only == "scheduled":
            return
        tenant_id = tenant_of(database_url, key)
        took = fill(database_url, tenant_id, args.pending)
        print(f"filled {args.pending:,} pending events in {took:.0f} s")
        await inbox(url, key, args.requests)

        single = {}
        for count, by_channel, label in [
            (0, False, "ingest, 0 endpoints"),
            (1_000, False, "ingest, 1,000 endpoints, none match"),
            (10_000, False, "ingest, 10,000 endpoints, none match"),
            (10_000, True, "ingest, 10,000 channel endpoints, 1 match"),
        ]:
            tenant_key = await new_tenant(
                database_url, f"single-{count}-{by_channel}", count, by_channel
            )
            body = EVENT | ({"channels": ["customer-5000"]} if by_channel else {})
            single[label] = (tenant_key, body)
        report(await ingest(url, single, args.requests), "ingest, 0 endpoints")

        batch_body = {"events": [EVENT] * 500}
        batch = {
            "batch of 500, 10 endpoints, all match": (
                await new_tenant(database_url, "batch-10", 0, False),
                batch_body,
            ),
            "batch of 500, 10,000 endpoints, 10 match": (
                await new_tenant(database_url, "batch-10010", 10_000, False),
                batch_body,
            ),
        }
        report(
            await ingest(url, batch, args.requests // 5), "batch of 500, 10 endpoints, all match"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pending", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--scheduled", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["scheduled"], help="only the scheduled-claims part")
    parser.add_argument("--url")
    parser.add_argument("--key")
    parser.add_argument("--database-url")
    asyncio.run(main(parser.parse_args()))
