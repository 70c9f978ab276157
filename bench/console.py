"""Console and portal pages against tenant size: 1M events, 10,000 endpoints and 1M delivery
attempts (the charts).

    uv run python bench/console.py [--pending 1000000] [--attempts 1000000] [--requests 100]

Starts `eventgate dev` with a throw-away data dir, fills the default tenant by SQL (the same
rows as bench/scale.py, plus 10,000 endpoints each with its own channel), signs in, then
times each page one request at a time in interleaved rounds. Each figure is printed with its
ratio to the API's own first inbox page (`GET /v1/inbox?limit=50`), measured in the same run:
a page that walked the tenant would show it here. The attempts (over the last 20 hours, to
100 endpoints, one in 20 failed) are rolled up into delivery_stats by the task's own batches,
timed against reading the same attempts alone; the chart pages read only the roll-up.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import psycopg

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench.common import dev_or_given, tenant_of
from bench.scale import ENDPOINTS, fill, quantiles, timed
from db import delivery_stats

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CEILING = "API: GET /v1/inbox?limit=50"


def pages(portal: str, charted: str) -> dict[str, str]:
    """Label → path of each page timed."""
    return {
        "console overview, charts per hour (2 days)": "/console/?view=hour",
        "console overview, charts per day (30 days)": "/console/?view=day",
        "console endpoint, charts per minute": f"/console/endpoints/{charted}",
        "console endpoint, charts per day": f"/console/endpoints/{charted}?view=day",
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


async def measure(url: str, key: str, requests: int, hour: str, charted: str) -> None:
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        await sign_in(session, url, key)
        targets = pages(await portal_path(session, url, key), charted)
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


# Attempts over the last 20 hours (up to two minutes ago), to 100 endpoints, one in 20 an
# HTTP 500, latency 0-400 ms.
ATTEMPTS = """
INSERT INTO delivery_attempts (id, tenant_id, delivery_id, endpoint_id, attempt, status_code,
                               latency_ms, started_at, created_at)
SELECT eventgate_uuidv7(t), %(tenant_id)s, gen_random_uuid(),
       (%(endpoints)s::uuid[])[1 + n %% 100], 1, CASE WHEN n %% 20 = 0 THEN 500 ELSE 200 END,
       (random() * 400)::int, t, date_trunc('milliseconds', t)
FROM generate_series(%(start)s, %(stop)s) AS n,
     LATERAL (SELECT now() - interval '2 minutes' - n * %(gap)s::interval AS t) AS at
"""


def fill_attempts(database_url: str, tenant_id: object, count: int) -> list[str]:
    """`count` attempts to the tenant's first 100 endpoints; their ids."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM endpoints WHERE tenant_id = %s ORDER BY id LIMIT 100", (tenant_id,)
            )
        ]
        gap = timedelta(hours=20) / count
        for start in range(1, count + 1, 100_000):
            params = {
                "tenant_id": tenant_id,
                "endpoints": ids,
                "gap": gap,
                "start": start,
                "stop": min(start + 99_999, count),
            }
            conn.execute(ATTEMPTS, params)
        conn.execute("VACUUM ANALYZE delivery_attempts")
    return [str(i) for i in ids]


async def roll_up(database_url: str) -> None:
    """The roll-up's batches until caught up, against reading the same attempts alone."""
    upto = datetime.now(UTC)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        started, counted = time.perf_counter(), 0
        while True:
            async with conn.transaction():
                done = await delivery_stats.roll_up_batch(conn, upto, 20_000)
            counted += done
            if done < 20_000:
                break
        took = time.perf_counter() - started
        read_started = time.perf_counter()
        cur = await conn.execute(
            "SELECT id, tenant_id, endpoint_id, started_at, status_code,"
            " error, latency_ms FROM delivery_attempts ORDER BY id"
        )
        read = len(await cur.fetchall())
        read_took = time.perf_counter() - read_started
        rows = await (await conn.execute("SELECT count(*) FROM delivery_stats")).fetchone()
    rate, ceiling = counted / took, read / read_took
    print(
        f"{'roll-up of attempts into delivery_stats':42} {rate:8.0f}/s  ceiling (read them) "
        f"{ceiling:8.0f}/s  ratio {rate / ceiling:4.2f}  ({counted:,} attempts -> "
        f"{rows[0]:,} rows)"
    )  # type: ignore[index]


async def main(args: argparse.Namespace) -> None:
    with dev_or_given(args) as (url, key, database_url):
        tenant_id = tenant_of(database_url, key)
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
        charted = fill_attempts(database_url, tenant_id, args.attempts)[0]
        await roll_up(database_url)
        await measure(url, key, args.requests, since, charted)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pending", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--attempts", type=int, default=1_000_000)
    parser.add_argument("--url")
    parser.add_argument("--key")
    parser.add_argument("--database-url")
    asyncio.run(main(parser.parse_args()))
