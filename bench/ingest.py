"""Ingest throughput: POST /v1/events and /v1/events/batch against a real Eventgate,
next to the ceiling of the same INSERT done directly with psycopg on the same database.

    uv run python bench/ingest.py [--concurrency 32] [--seconds 10]

Starts `eventgate dev` on a free port with a throw-away data dir (or uses --url, --key and
--database-url of a running Eventgate), then prints each figure with its ceiling and ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import psycopg

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench.common import dev_or_given, tenant_of
from db import events
from db.ids import new_id

BODY = {"source": "bench", "event_type": "bench.ingest", "payload": {"n": 1, "text": "x" * 200}}


async def http_load(url: str, key: str, concurrency: int, seconds: float) -> list[float]:
    """Latencies (s) of single-event POSTs from `concurrency` keep-alive clients."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    headers = {"X-API-Key": key}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with session.post(f"{url}/v1/events", json=BODY, headers=headers) as resp:
                    await resp.read()
                    assert resp.status == 201, resp.status
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies


async def batch_load(url: str, key: str, concurrency: int, seconds: float, size: int) -> int:
    """Events stored through /v1/events/batch in `seconds`."""
    stored = 0
    deadline = time.perf_counter() + seconds
    body = {"events": [BODY] * size}
    async with aiohttp.ClientSession() as session:

        async def client() -> None:
            nonlocal stored
            while time.perf_counter() < deadline:
                async with session.post(
                    f"{url}/v1/events/batch", json=body, headers={"X-API-Key": key}
                ) as resp:
                    await resp.read()
                    assert resp.status == 201, resp.status
                stored += size

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return stored


async def insert_ceiling(
    database_url: str, tenant_id: uuid.UUID, connections: int, seconds: float
) -> int:
    """The statement the API runs for one event (no endpoints: the fan-out inserts nothing),
    one transaction each, straight from psycopg."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def writer() -> None:
        nonlocal done
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            while time.perf_counter() < deadline:
                row = events.NewEvent(
                    id=new_id(),
                    tenant_id=tenant_id,
                    source=BODY["source"],
                    event_type=BODY["event_type"],
                    payload=BODY["payload"],
                    metadata={"priority": "normal"},
                    idempotency_key=None,
                    correlation_id=None,
                    priority="normal",
                )
                await events.insert_with_fan_out(conn, [row])
                done += 1

    await asyncio.gather(*(writer() for _ in range(connections)))
    return done


def report(args: argparse.Namespace, url: str, key: str, database_url: str) -> None:
    tenant_id = tenant_of(database_url, key)
    asyncio.run(http_load(url, key, args.concurrency, 1.0))  # warm up (key cache, pool)
    latencies = asyncio.run(http_load(url, key, args.concurrency, args.seconds))
    api_rps = len(latencies) / args.seconds
    ceiling = asyncio.run(insert_ceiling(database_url, tenant_id, args.concurrency, args.seconds))
    ceiling_rps = ceiling / args.seconds
    batch = asyncio.run(batch_load(url, key, 2, args.seconds, 500)) / args.seconds
    quantiles = statistics.quantiles(latencies, n=100)
    print(f"machine: {os.cpu_count()} cores; {args.concurrency} clients; {args.seconds:.0f} s each")
    print(
        f"POST /v1/events          {api_rps:9.0f} req/s   p50 {quantiles[49] * 1000:.1f} ms  p99 {quantiles[98] * 1000:.1f} ms"
    )
    print(f"ceiling: psycopg INSERT  {ceiling_rps:9.0f} rows/s  ({args.concurrency} connections)")
    print(f"ratio                    {api_rps / ceiling_rps:9.2f}")
    print(f"POST /v1/events/batch    {batch:9.0f} events/s  (500 per request, 2 clients)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--url")
    parser.add_argument("--key")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with dev_or_given(args) as (url, key, database_url):
        report(args, url, key, database_url)


if __name__ == "__main__":
    main()
