"""Console and portal pages against tenant size: 1M events and 10,000 endpoints.

    uv run python bench/console.py [--pending 1000000] [--requests 100]

Starts `eventgate dev` with a throw-away data dir, fills the default tenant by SQL (the same
rows as bench/scale.py, plus 10,000 endpoints each with its own channel), signs in, then
times each page one request at a time in interleaved rounds. Each figure is printed with its
ratio to the API's own first inbox page (`GET /v1/inbox?limit=50`), measured in the same run:
a page that walked the tenant would show it here.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from pathlib import Path

import aiohttp
import psycopg

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench.common import dev_or_given, tenant_of
from bench.scale import ENDPOINTS, fill, quantiles, timed

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CEILING = "API: GET /v1/inbox?limit=50"


def pages(portal: str) -> dict[str, str]:
    """Label → path of each page timed."""
    return {
        CEILING: "/v1/inbox?limit=50",
        "console overview": "/console/",
        "console events, newest 50": "/console/events",
        "console events, type 0.01 %": "/console/events?event_type=rare.type",
        "console events, channel 1 %": "/console/events?channel=c-1pct",
        "console events, last hour, no match": "/console/events?source=nobody&since=" + "{hour}",
        "console endpoints, first 50 of 10,000": "/console/endpoints",
        "portal endpoints, 1 of 10,000 by channel": f"{portal}/endpoints",
    }


async def sign_in(session: aiohttp.ClientSession, url: str, key: str) -> None:
    async with session.get(f"{url}/console/sign-in") as form:
        csrf = CSRF.search(await form.text()).group(1)  # type: ignore[union-attr]
    data = {"csrf_token": csrf, "key": key}
    async with session.post(f"{url}/console/sign-in", data=data, allow_redirects=False) as done:
        assert done.status == 303, await done.text()


async def portal_path(session: aiohttp.ClientSession, url: str, key: str) -> str:
    body = {"channel": "customer-5000", "allowed_origin": "https://app.example"}
    headers = {"X-API-Key": key}
    async with session.post(f"{url}/v1/portal-links", json=body, headers=headers) as created:
        link = (await created.json())["url"]
    return "/" + link.split("/", 3)[3].rstrip("/")


async def measure(url: str, key: str, requests: int, hour: str) -> None:
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        await sign_in(session, url, key)
        targets = pages(await portal_path(session, url, key))
        targets = {label: path.replace("{hour}", hour) for label, path in targets.items()}
        samples: dict[str, list[float]] = {label: [] for label in targets}
        headers = {"X-API-Key": key}
        for _ in range(requests):
            for label, path in targets.items():
                kw = {"headers": headers} if path.startswith("/v1") else {}
                samples[label].append(await timed(session, "GET", f"{url}{path}", kw))
    base = quantiles(samples[CEILING])[0]
    for label, taken in samples.items():
        p50, p95 = quantiles(taken)
        print(f"{label:42} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  ratio {p50 / base:4.2f}")


# One event per statement, as single-event ingest writes it.
ONE_EVENT = """
INSERT INTO events (id, tenant_id, source, event_type, payload, channels, created_at)
VALUES (eventgate_uuidv7(now()), %(tenant_id)s, 'bench', 'bench.one', '{"n": 1}', '{}', now())
"""


def insert_rate(database_url: str, tenant_id: object, count: int) -> float:
    """Single-row event INSERTs per second, one round trip each."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        started = time.perf_counter()
        for _ in range(count):
            conn.execute(ONE_EVENT, {"tenant_id": tenant_id})
        return count / (time.perf_counter() - started)


def index_cost(database_url: str, tenant_id: object, count: int) -> None:
    """What events_tenant_idx (the console's index) costs each insert: the same inserts
    with and without it, alternating, in this run (the database is a throw-away one)."""
    with_index, without = [], []
    for _ in range(3):
        with_index.append(insert_rate(database_url, tenant_id, count))
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DROP INDEX events_tenant_idx")
        without.append(insert_rate(database_url, tenant_id, count))
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("CREATE INDEX events_tenant_idx ON events (tenant_id, id)")
    best, ceiling = max(with_index), max(without)
    print(
        f"{'event INSERT with events_tenant_idx':42} {best:8.0f}/s  ceiling (without) "
        f"{ceiling:8.0f}/s  ratio {best / ceiling:4.2f}"
    )


async def main(args: argparse.Namespace) -> None:
    with dev_or_given(args) as (url, key, database_url):
        tenant_id = tenant_of(database_url, key)
        index_cost(database_url, tenant_id, args.inserts)
        took = fill(database_url, tenant_id, args.pending)
        with psycopg.connect(database_url, autocommit=True) as conn:
            params = {"tenant_id": tenant_id, "count": 10_000, "by_channel": True}
            conn.execute(ENDPOINTS, params)
            conn.execute("ANALYZE endpoints")
            hour = conn.execute(
                "SELECT to_char(now() - interval '1 hour', 'YYYY-MM-DD\"T\"HH24:MI')"
            )
            since = hour.fetchone()[0]  # type: ignore[index]
        print(f"filled {args.pending:,} events and 10,000 endpoints in {took:.0f} s")
        await measure(url, key, args.requests, since)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pending", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--inserts", type=int, default=5000)
    parser.add_argument("--url")
    parser.add_argument("--key")
    parser.add_argument("--database-url")
    asyncio.run(main(parser.parse_args()))
