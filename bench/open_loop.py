"""The single-event load the sustained benches offer: closed-loop clients for a ceiling, and an
open-loop flow on a fixed schedule that times each answer from its scheduled moment. Both send
with `bench/lean_http.py`, so the load costs the machine little of what it measures."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Awaitable, Callable

import aiohttp

from bench.lean_http import LeanClient

Post = Callable[[dict[str, object]], Awaitable[int]]


def body(n: int, at: float) -> dict[str, object]:
    """One event; its payload carries the time its POST was scheduled."""
    return {"source": "bench", "event_type": "bench.sustained", "payload": {"n": n, "at": at}}


async def closed_loop(post: Post, status: int, clients: int, seconds: float) -> float:
    """POSTs/s answered `status` when `clients` each `post` one after another for `seconds`."""
    done = 0
    deadline = time.monotonic() + seconds

    async def client() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            answered = await post(body(0, time.time()))
            done += answered == status  # not `done += await ...`: that reads `done` first

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(clients)))
    return done / (time.monotonic() - started)


async def api_alone(base: str, key: str, seconds: float, clients: int = 32) -> float:
    """Events/s the API accepts closed-loop when no endpoint takes them (the ceiling)."""
    client = LeanClient(f"{base}/v1/events", {"X-API-Key": key}, limit=clients)
    try:
        return await closed_loop(_status_of(client), 201, clients, seconds)
    finally:
        client.close()


def _status_of(client: LeanClient) -> Post:
    async def post(sent: dict[str, object]) -> int:
        status, _ = await client.post(sent)
        return status

    return post


async def aiohttp_closed_loop(url: str, status: int, clients: int, seconds: float) -> float:
    """The same with aiohttp's client, which the engine delivers with (the delivery ceiling)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:

        async def post(sent: dict[str, object]) -> int:
            async with session.post(url, json=sent) as answer:
                await answer.read()
                return answer.status

        return await closed_loop(post, status, clients, seconds)


async def offer(base: str, key: str, rate: float, seconds: float) -> tuple[int, float, list[float]]:
    """POST events at `rate` on a fixed schedule for `seconds`: (accepted, seconds it took, each
    accepted POST's seconds from its scheduled moment to its answer)."""
    return await offer_to(f"{base}/v1/events", {"X-API-Key": key}, 201, rate, seconds)


async def offer_to(
    url: str, headers: dict[str, str], status: int, rate: float, seconds: float
) -> tuple[int, float, list[float]]:
    """POST to `url` at `rate` on a fixed schedule for `seconds`: (answered `status`, seconds it
    took, each such POST's seconds from its scheduled moment to its answer)."""
    answered: list[float] = []
    client = LeanClient(url, headers, limit=1000)

    async def one(n: int, due: float, at: float) -> None:
        with contextlib.suppress(OSError):
            got, _ = await client.post(body(n, at))
            if got == status:
                answered.append(time.monotonic() - due)

    started, wall = time.monotonic(), time.time()
    tasks = []
    for n in range(int(rate * seconds)):
        due = started + n / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        tasks.append(asyncio.create_task(one(n, due, wall + n / rate)))
    await asyncio.gather(*tasks)
    client.close()
    return len(answered), time.monotonic() - started, answered


def percentiles(seconds: list[float]) -> str:
    """p50/p95/p99/max of latencies, in milliseconds."""
    if len(seconds) < 2:
        return "p50 n/a"
    cuts = statistics.quantiles(seconds, n=100)
    return (
        f"p50 {cuts[49] * 1000:7.1f} ms  p95 {cuts[94] * 1000:7.1f}  p99 {cuts[98] * 1000:7.1f}  "
        f"max {max(seconds) * 1000:7.1f}"
    )
