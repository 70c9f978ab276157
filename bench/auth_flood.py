"""A valid key's latency while others flood the API with wrong secrets for a real key prefix.

    uv run python bench/auth_flood.py [--seconds 6] [--flooders 8]

Starts `eventgate dev` (or uses --url, --key and --database-url), then measures the median
latency of GET /v1/inbox?limit=1 with a valid, cached key: first alone, then while
`--flooders` clients send wrong secrets for the same key's prefix (each would cost an argon2
run if nothing bounded them). Prints both medians and their ratio, in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench.common import dev_or_given


async def timed_requests(url: str, key: str, seconds: float) -> list[float]:
    """Latencies (s) of back-to-back authenticated requests from one client."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.get(f"{url}/v1/inbox?limit=1", headers={"X-API-Key": key}) as r:
                await r.read()
                assert r.status == 200, r.status
            latencies.append(time.perf_counter() - started)
    return latencies


async def flood(url: str, prefix: str, clients: int, seconds: float) -> int:
    """Requests with wrong secrets for `prefix` from `clients` clients; returns how many."""
    sent = 0
    deadline = time.perf_counter() + seconds

    async def one_client(session: aiohttp.ClientSession) -> None:
        nonlocal sent
        while time.perf_counter() < deadline:
            guess = f"eg_{prefix}_{secrets.token_urlsafe(32)}"
            async with session.get(f"{url}/v1/inbox", headers={"X-API-Key": guess}) as r:
                await r.read()
                assert r.status in (401, 429), r.status  # refused, or over the guessing limit
            sent += 1

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one_client(session) for _ in range(clients)))
    return sent


async def measure(url: str, key: str, args: argparse.Namespace) -> None:
    prefix = key.split("_")[1]
    await timed_requests(url, key, 1.0)  # warm up: the key is verified once, then cached
    alone = await timed_requests(url, key, args.seconds)
    flooded, sent = await asyncio.gather(
        timed_requests(url, key, args.seconds), flood(url, prefix, args.flooders, args.seconds)
    )
    quiet, loud = statistics.median(alone) * 1000, statistics.median(flooded) * 1000
    print(f"valid key, median latency alone            {quiet:7.2f} ms  ({len(alone)} requests)")
    print(
        f"valid key, median latency under the flood  {loud:7.2f} ms  "
        f"({args.flooders} clients sent {sent} wrong secrets, {sent / args.seconds:.0f}/s)"
    )
    print(f"ratio                                      {loud / quiet:7.2f}  (target <= 2)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--flooders", type=int, default=8)
    parser.add_argument("--url")
    parser.add_argument("--key")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with dev_or_given(args) as (url, key, _database_url):
        asyncio.run(measure(url, key, args))


if __name__ == "__main__":
    main()
