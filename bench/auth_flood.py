"""A valid key's latency while others flood the API with wrong secrets for its prefix, and
while others flood the console's sign-in with wrong keys.

    uv run python bench/auth_flood.py [--seconds 6] [--flooders 8] [--sign-ins 100]

Starts `eventgate dev` (or uses --url and --key) with a key cache of one second, so the valid
key's verification expires again and again during each flood (the case where guessing used to
lock its holder out). Measures GET /v1/inbox?limit=1 with the valid key back to back: alone,
then under each flood, in one run. Prints each median and p95 next to the one measured alone,
as a ratio, with how many of the valid key's answers were not 200 and how many answers of
any kind were 503.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench.common import dev_or_given

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Run:
    """The valid key's latencies and every status seen during one measurement."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.valid_statuses: Counter[int] = Counter()
        self.flood_statuses: Counter[int] = Counter()


async def valid_requests(url: str, key: str, seconds: float, run: Run) -> None:
    """Back-to-back authenticated requests from one client."""
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.get(f"{url}/v1/inbox?limit=1", headers={"X-API-Key": key}) as r:
                await r.read()
                run.valid_statuses[r.status] += 1
            run.latencies.append(time.perf_counter() - started)


async def guess_flood(url: str, key: str, clients: int, seconds: float, run: Run) -> None:
    """Wrong secrets for the valid key's prefix from `clients` clients."""
    prefix = key.split("_")[1]
    deadline = time.perf_counter() + seconds

    async def one_client(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < deadline:
            guess = f"eg_{prefix}_{secrets.token_urlsafe(32)}"
            async with session.get(f"{url}/v1/inbox", headers={"X-API-Key": guess}) as r:
                await r.read()
                run.flood_statuses[r.status] += 1

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one_client(session) for _ in range(clients)))


async def sign_in_flood(url: str, clients: int, seconds: float, run: Run) -> None:
    """`clients` concurrent console sign-ins with wrong keys, again and again."""
    deadline = time.perf_counter() + seconds
    # unsafe: keep cookies for an IP address host (the sign-in form's CSRF cookie).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.get(f"{url}/console/sign-in") as form:
            token = CSRF.search(await form.text())
        assert token is not None

        async def one_client(n: int) -> None:
            while time.perf_counter() < deadline:
                wrong = f"eg_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"
                data = {"csrf_token": token.group(1), "key": wrong}
                async with session.post(
                    f"{url}/console/sign-in", data=data, allow_redirects=False
                ) as r:
                    await r.read()
                    run.flood_statuses[r.status] += 1

        await asyncio.gather(*(one_client(n) for n in range(clients)))


def report(name: str, run: Run, alone: Run | None) -> None:
    """One line: median and p95 of the valid key, ratios to alone, non-200s and 503s."""
    median = statistics.median(run.latencies) * 1000
    p95 = statistics.quantiles(run.latencies, n=20)[18] * 1000
    ratio = ""
    if alone is not None:
        base_median = statistics.median(alone.latencies) * 1000
        base_p95 = statistics.quantiles(alone.latencies, n=20)[18] * 1000
        ratio = f"  ratio {median / base_median:5.2f} (p95 {p95 / base_p95:5.2f}; target <= 2)"
    refused = sum(n for status, n in run.valid_statuses.items() if status != 200)
    unavailable = run.valid_statuses[503] + run.flood_statuses[503]
    flood = sum(run.flood_statuses.values())
    print(
        f"{name:<28} median {median:7.2f} ms  p95 {p95:7.2f} ms{ratio}\n"
        f"{'':<28} valid key: {len(run.latencies)} requests, {refused} not 200; "
        f"flood: {flood} requests {dict(sorted(run.flood_statuses.items()))}; "
        f"503s: {unavailable}"
    )


async def measure(url: str, key: str, args: argparse.Namespace) -> None:
    warm = Run()
    await valid_requests(url, key, 1.0, warm)  # the key is verified once, then known
    alone = Run()
    await valid_requests(url, key, args.seconds, alone)
    report("alone", alone, None)
    scenarios: list[tuple[str, Callable[[Run], Awaitable[None]]]] = [
        (
            f"wrong secrets ({args.flooders} clients)",
            lambda run: guess_flood(url, key, args.flooders, args.seconds, run),
        ),
        (
            f"console sign-ins ({args.sign_ins} at once)",
            lambda run: sign_in_flood(url, args.sign_ins, args.seconds, run),
        ),
    ]
    for name, flood in scenarios:
        run = Run()
        await asyncio.gather(valid_requests(url, key, args.seconds, run), flood(run))
        report(name, run, alone)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--flooders", type=int, default=8)
    parser.add_argument("--sign-ins", type=int, default=100)
    parser.add_argument("--url")
    parser.add_argument("--key")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    # The valid key's cache entry expires every second: each flood meets its re-verification.
    os.environ.setdefault("EVENTGATE_KEY_CACHE_TTL_SECONDS", "1")
    with dev_or_given(args) as (url, key, _database_url):
        asyncio.run(measure(url, key, args))


if __name__ == "__main__":
    main()
