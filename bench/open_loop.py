"""The single-event load the sustained benches offer: closed-loop clients for a ceiling, and an
open-loop flow on a fixed schedule that times each answer from its scheduled moment."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time

import aiohttp


def body(n: int, at: float) -> dict[str, object]:
    """One event; its payload carries the time its POST was scheduled."""
    return {"source": "bench", "event_type": "bench.sustained", "payload": {"n": n, "at": at}}


async def closed_loop(
    session: aiohttp.ClientSession, url: str, status: int, clients: int, seconds: float
) -> float:
    """POSTs/s answered `status` by `url` when `clients` send one after another for `seconds`."""
    done = 0
    deadline = time.monotonic() + seconds

    async def client() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            async with session.post(url, json=body(0, time.time())) as answer:
                await answer.read()
                done += answer.status == status

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(clients)))
    return done / (time.monotonic() - started)


async def api_alone(base: str, key: str, seconds: float, clients: int = 32) -> float:
    """Events/s the API accepts closed-loop when no endpoint takes them (the ceiling)."""
    async with aiohttp.ClientSession(headers={"X-API-Key": key}) as session:
        return await closed_loop(session, f"{base}/v1/events", 201, clients, seconds)


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
    async with aiohttp.ClientSession(
        headers=headers, connector=aiohttp.TCPConnector(limit=1000)
    ) as session:

        async def one(n: int, due: float, at: float) -> None:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.post(url, json=body(n, at)) as r:
                    await r.read()
                    if r.status == status:
                        answered.append(time.monotonic() - due)

        started, wall = time.monotonic(), time.time()
        tasks = []
        for n in range(int(rate * seconds)):
            due = started + n / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            tasks.append(asyncio.create_task(one(n, due, wall + n / rate)))
        await asyncio.gather(*tasks)
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
