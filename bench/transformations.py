"""What transformations cost a tenant, and what a hostile tenant's cost its neighbours.

    uv run python bench/transformations.py [--rate 100] [--seconds 10] [--hostile-rate 50]

Starts `eventgate dev` (API and one worker in one process) and a local receiver, then posts
single events of one tenant at a fixed rate in three phases and prints each phase's end-to-end
latency (POST sent → arrival) p50/p95/p99 next to the first phase's, as a ratio:
  1. plain: the endpoint has no transformation (the ceiling);
  2. transformed: the endpoint reshapes each payload in the sandbox;
  3. beside a hostile tenant: the same, while another tenant posts --hostile-rate events/s to
     an endpoint whose handler is `while (true) {}` (each call burns its whole CPU limit).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench.common import dev_or_given, make_key
from bench.deliver import BODY, Receiver, api, serve

RESHAPE = "function handler(w) { w.payload = { id: w.payload.id, text: w.payload.event_type }; return w; }"
ENDLESS = "function handler(w) { while (true) {} }"


class Phase:
    """One tenant's endpoint and the latencies of events posted to it."""

    def __init__(self, session: aiohttp.ClientSession, base: str, key: str) -> None:
        self.session, self.base, self.key = session, base, key
        self.endpoint = ""

    async def endpoint_for(self, hook: str, code: str | None) -> None:
        """A fresh endpoint at the receiver, with this transformation."""
        made = await api(
            self.session, "POST", f"{self.base}/v1/endpoints", self.key, json={"url": hook}
        )
        self.endpoint = made["endpoint"]["id"]
        if code is not None:
            path = f"{self.base}/v1/endpoints/{self.endpoint}/transformation"
            await api(self.session, "PUT", path, self.key, json={"code": code})

    async def drop(self) -> None:
        """Delete the endpoint (its waiting deliveries end with it)."""
        await api(self.session, "DELETE", f"{self.base}/v1/endpoints/{self.endpoint}", self.key)


async def post_at(phase: Phase, rate: float, seconds: float) -> dict[str, float]:
    """POST single events at a fixed rate; when each was sent, by event id."""
    sent: dict[str, float] = {}

    async def one() -> None:
        started = time.perf_counter()
        url = f"{phase.base}/v1/events"
        event = await api(phase.session, "POST", url, phase.key, json=BODY)
        sent[event["event_id"]] = started

    tasks = []
    start = time.perf_counter()
    for n in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, n / rate - (time.perf_counter() - start)))
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return sent


async def measure(phase: Phase, receiver: Receiver, rate: float, seconds: float) -> list[float]:
    """Milliseconds from each POST to its arrival."""
    sent = await post_at(phase, rate, seconds)
    deadline = time.perf_counter() + 30
    while any(e not in receiver.arrived for e in sent) and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    return [(receiver.arrived[e] - t) * 1000 for e, t in sent.items() if e in receiver.arrived]


def summary(name: str, samples: list[float], ceiling: list[float] | None, expected: int) -> None:
    cuts = statistics.quantiles(samples, n=100)
    p50, p95, p99 = cuts[49], cuts[94], cuts[98]
    line = f"{name:<28} arrived {len(samples)}/{expected}  p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  p99 {p99:7.1f} ms"
    if ceiling is not None:
        base = statistics.quantiles(ceiling, n=100)
        line += f"  (p50 x{p50 / base[49]:.2f}, p99 x{p99 / base[98]:.2f} of plain)"
    print(line, flush=True)


async def run(args: argparse.Namespace, base: str, key: str, database_url: str) -> None:
    receiver = Receiver()
    runner, hook = await serve(receiver)
    expected = int(args.rate * args.seconds)
    async with aiohttp.ClientSession() as session:
        neighbour = Phase(session, base, key)
        hostile = Phase(session, base, make_key(database_url, "hostile"))
        await neighbour.endpoint_for(hook, None)
        plain = await measure(neighbour, receiver, args.rate, args.seconds)
        summary("plain (the ceiling)", plain, None, expected)
        await neighbour.drop()
        await neighbour.endpoint_for(hook, RESHAPE)
        transformed = await measure(neighbour, receiver, args.rate, args.seconds)
        summary("transformed", transformed, plain, expected)
        await hostile.endpoint_for(hook, ENDLESS)
        flood = asyncio.create_task(post_at(hostile, args.hostile_rate, args.seconds + 2))
        await asyncio.sleep(1)
        beside = await measure(neighbour, receiver, args.rate, args.seconds)
        summary(f"beside while(true) x{args.hostile_rate:g}/s", beside, plain, expected)
        await flood
        await hostile.drop()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--hostile-rate", type=float, default=50)
    parser.add_argument("--url")
    parser.add_argument("--key")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with dev_or_given(args) as (base, key, database_url):
        asyncio.run(run(args, base, key, database_url))


if __name__ == "__main__":
    main()
