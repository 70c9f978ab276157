"""Delivery throughput and latency against a real Eventgate and a local receiver, next to the
ceilings of plain aiohttp POSTs to the same receiver and of no-op procrastinate jobs on the
same database.

    uv run python bench/deliver.py [--events 20000] [--rate 200] [--seconds 10]
                                   [--kinds rabbitmq,nats,redis] [--kind-events 5000]

Starts `eventgate dev` (API and one worker in one process) with a throw-away data dir, or uses
--url, --key and --database-url of a running Eventgate. Then, unless --no-tracing, a second
`eventgate dev` with OpenTelemetry tracing on (exporting by OTLP/HTTP to a sink in this
process) and the first one take turns at the drain and the latency run: tracing's cost. The receiver runs in this process; the
brokers (bench/destinations.py) are Debian's servers started on free ports for the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import psutil
from aiohttp import web
from procrastinate import App, PsycopgConnector

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench import destinations
from bench.common import dev_or_given, otlp_sink
from core.encryption import Keyring, Where, generate_key

BODY = {"source": "bench", "event_type": "bench.deliver", "payload": {"text": "x" * 200}}


class Receiver:
    """Counts deliveries and when each event arrived."""

    def __init__(self) -> None:
        self.count = 0
        self.arrived: dict[str, float] = {}

    async def handle(self, request: web.Request) -> web.Response:
        """Answer 204 and note the arrival."""
        body = await request.json()
        self.count += 1
        self.arrived.setdefault(body["id"], time.perf_counter())
        return web.Response(status=204)


async def serve(receiver: Receiver) -> tuple[web.AppRunner, str]:
    """Serve the receiver on a free loopback port."""
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/hook"


async def api(session: aiohttp.ClientSession, method: str, url: str, key: str, **kw) -> dict:
    """One API call that must succeed."""
    async with session.request(method, url, headers={"X-API-Key": key}, **kw) as response:
        assert response.status < 300, (response.status, await response.text())
        return await response.json() if response.status != 204 else {}


async def drain_rate(
    session: aiohttp.ClientSession,
    base: str,
    key: str,
    receiver: Receiver,
    hook: str,
    events: int,
) -> float:
    """Queue `events` deliveries behind a disabled endpoint, enable it, time the drain."""
    endpoint = (await api(session, "POST", f"{base}/v1/endpoints", key, json={"url": hook}))[
        "endpoint"
    ]
    await api(session, "POST", f"{base}/v1/endpoints/{endpoint['id']}/disable", key)
    for start in range(0, events, 500):
        size = min(500, events - start)
        await api(session, "POST", f"{base}/v1/events/batch", key, json={"events": [BODY] * size})
    receiver.count = 0
    started = time.perf_counter()
    await api(session, "POST", f"{base}/v1/endpoints/{endpoint['id']}/enable", key)
    while receiver.count < events:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    await api(session, "DELETE", f"{base}/v1/endpoints/{endpoint['id']}", key)
    return events / elapsed


async def latencies(
    session: aiohttp.ClientSession,
    base: str,
    key: str,
    receiver: Receiver,
    hook: str,
    rate: float,
    seconds: float,
) -> list[tuple[float, float]]:
    """POST single events at a fixed rate; time from sending each, and from its 201 (after
    the commit), to its arrival at the receiver."""
    endpoint = (await api(session, "POST", f"{base}/v1/endpoints", key, json={"url": hook}))[
        "endpoint"
    ]
    sent: dict[str, tuple[float, float]] = {}

    async def one() -> None:
        started = time.perf_counter()
        event = await api(session, "POST", f"{base}/v1/events", key, json=BODY)
        sent[event["event_id"]] = (started, time.perf_counter())

    tasks = []
    start = time.perf_counter()
    for n in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, n / rate - (time.perf_counter() - start)))
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    deadline = time.perf_counter() + 30
    while any(e not in receiver.arrived for e in sent) and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    await api(session, "DELETE", f"{base}/v1/endpoints/{endpoint['id']}", key)
    return [
        (receiver.arrived[e] - started, receiver.arrived[e] - answered)
        for e, (started, answered) in sent.items()
        if e in receiver.arrived
    ]


async def post_ceiling(url: str, concurrency: int, seconds: float) -> float:
    """Plain aiohttp POSTs of a same-sized body to the same receiver."""
    done = 0
    deadline = time.perf_counter() + seconds
    body = {"id": "ceiling", **BODY}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:

        async def client() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                async with s.post(url, json=body) as response:
                    await response.read()
                done += 1

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return done / seconds


async def noop_job_ceiling(database_url: str, jobs: int) -> float:
    """No-op procrastinate jobs drained by one worker (concurrency 10) on the same database."""
    app = App(connector=PsycopgConnector(conninfo=database_url))

    @app.task(name="bench_noop", queue="bench_noop")
    async def noop() -> None:
        return None

    async with app.open_async():
        for start in range(0, jobs, 1000):
            await noop.batch_defer_async(*({} for _ in range(min(1000, jobs - start))))
        started = time.perf_counter()
        await app.run_worker_async(
            queues=["bench_noop"],
            concurrency=10,
            wait=False,
            install_signal_handlers=False,
            delete_jobs="always",
        )
        return jobs / (time.perf_counter() - started)


def secret_opening_seconds(rounds: int = 20000) -> tuple[float, float]:
    """What opening an endpoint's sealed secret costs a delivery: from the keyring's memory (as
    the worker does for an endpoint it has signed for in the last 5 minutes), and decrypted."""
    keyring = Keyring.parse(generate_key())
    where = Where("endpoints", "secret", uuid.uuid4())
    sealed = keyring.seal("whsec_" + "A" * 44, where)
    keyring.open(sealed, where)
    started = time.perf_counter()
    for _ in range(rounds):
        keyring.open(sealed, where)
    cached = (time.perf_counter() - started) / rounds
    started = time.perf_counter()
    for _ in range(rounds):
        keyring.forget_opened()
        keyring.open(sealed, where)
    return cached, (time.perf_counter() - started) / rounds


async def per_kind(
    args: argparse.Namespace, base: str, key: str, database_url: str, brokers: dict
) -> None:
    """Each broker kind's drain rate next to its client's raw publish ceiling."""
    body = json.dumps({"id": "ceiling", **BODY}).encode()
    for kind, broker in brokers.items():
        await destinations.prepare(broker)
        async with aiohttp.ClientSession() as session:
            with machine_cpu() as drained:
                rate = await destinations.drain_rate(
                    session, api, base, key, database_url, broker, args.kind_events, BODY
                )
        with machine_cpu() as published:
            ceiling = await destinations.publish_ceiling(broker, body, 100, 5.0)
        print(
            f"{kind:9} deliveries (drain of {args.kind_events}) {rate:8.0f} /s"
            f"   ceiling: acknowledged publishes, 100 at once {ceiling:8.0f} /s"
            f"   ratio {rate / ceiling:.2f}"
        )
        print(
            f"{'':9} machine CPU: draining {drained.cores:.2f} cores,"
            f" {drained.seconds * 1000 / args.kind_events:.2f} ms a delivery;"
            f" publishing {published.cores:.2f} cores,"
            f" {published.seconds * 1000 / (ceiling * 5.0):.3f} ms a message"
        )


class CpuUse:
    """The machine's busy CPU over a stretch of time: core-seconds, and cores on average."""

    seconds = 0.0
    cores = 0.0


@contextlib.contextmanager
def machine_cpu() -> Iterator[CpuUse]:
    """Measure every process's CPU (user + system, all cores) while the block runs."""
    use = CpuUse()
    before, started = psutil.cpu_times(), time.perf_counter()
    yield use
    after, took = psutil.cpu_times(), time.perf_counter() - started
    use.seconds = (after.user + after.system) - (before.user + before.system)
    use.cores = use.seconds / took


async def run(args: argparse.Namespace, base: str, key: str, database_url: str) -> None:
    """Measure everything and print it."""
    receiver = Receiver()
    runner, hook = await serve(receiver)
    try:
        async with aiohttp.ClientSession() as session:
            rate = await drain_rate(session, base, key, receiver, hook, args.events)
            lat = await latencies(session, base, key, receiver, hook, args.rate, args.seconds)
        posts = await post_ceiling(hook, 100, 5.0)
    finally:
        await runner.cleanup()
    jobs = await noop_job_ceiling(database_url, 3000)
    cached, decrypted = secret_opening_seconds()
    q = statistics.quantiles([sent for sent, _ in lat], n=100)
    a = statistics.quantiles([answered for _, answered in lat], n=100)
    print(f"machine: {os.cpu_count()} cores; API, worker and Postgres in one `eventgate dev`")
    print(f"deliveries (steady drain of {args.events})  {rate:8.0f} /s")
    print(f"ceiling: aiohttp POSTs, 100 conns     {posts:8.0f} /s   ratio {rate / posts:.2f}")
    print(f"ceiling: no-op procrastinate jobs     {jobs:8.0f} /s   ratio {rate / jobs:.2f}")
    print(
        f"latency at {args.rate:.0f} events/s, POST sent -> received:"
        f" p50 {q[49] * 1000:.1f} ms  p99 {q[98] * 1000:.1f} ms  ({len(lat)} events)"
    )
    print(
        f"latency at {args.rate:.0f} events/s, 201 answered -> received:"
        f" p50 {a[49] * 1000:.1f} ms  p99 {a[98] * 1000:.1f} ms"
    )
    per_delivery = 1 / rate  # one delivery's share of the machine at the drained rate
    print(
        f"secret opening per delivery: remembered {cached * 1e6:.2f} us"
        f" ({cached / per_delivery:.2%} of a delivery), decrypted {decrypted * 1e6:.2f} us"
        f" ({decrypted / per_delivery:.2%}); target <= 5 %"
    )


async def tracing_cost(
    args: argparse.Namespace, plain: tuple[str, str], traced: tuple[str, str]
) -> None:
    """Drain rate and latency with tracing off and on, the two processes taking turns."""
    receiver = Receiver()
    runner, hook = await serve(receiver)
    figures: dict[str, list[tuple[float, float, float]]] = {"off": [], "on": []}
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(2):
                for name, (base, key) in (("off", plain), ("on", traced)):
                    rate = await drain_rate(session, base, key, receiver, hook, args.events // 2)
                    lat = await latencies(
                        session, base, key, receiver, hook, args.rate, args.seconds / 2
                    )
                    q = statistics.quantiles([sent for sent, _ in lat], n=100)
                    figures[name].append((rate, q[49] * 1000, q[98] * 1000))
    finally:
        await runner.cleanup()
    (off_rate, off_p50, off_p99), (on_rate, on_p50, on_p99) = (
        tuple(statistics.mean(run[i] for run in figures[name]) for i in range(3))
        for name in ("off", "on")
    )
    print("tracing (two `eventgate dev`, taking turns, 2 rounds each):")
    print(
        f"  drain, tracing off / on     {off_rate:8.0f} / {on_rate:.0f} /s   ratio {on_rate / off_rate:.2f}"
    )
    print(
        f"  at {args.rate:.0f} events/s, p50 {off_p50:.1f} / {on_p50:.1f} ms"
        f"  p99 {off_p99:.1f} / {on_p99:.1f} ms  (off / on)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--url")
    parser.add_argument("--key")
    parser.add_argument("--database-url")
    parser.add_argument("--kinds", default="rabbitmq,nats,redis", help="brokers, or ''")
    parser.add_argument("--kind-events", type=int, default=5000)
    parser.add_argument("--no-tracing", action="store_true", help="skip tracing's cost")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    with destinations.running_brokers(kinds) as brokers:
        # The started `eventgate dev` (or the given one) may publish to these brokers.
        os.environ["EVENTGATE_BROKER_HOSTS"] = ",".join(b.address for b in brokers.values())
        with dev_or_given(args) as (url, key, database_url):
            asyncio.run(run(args, url, key, database_url))
            asyncio.run(per_kind(args, url, key, database_url, brokers))
            if not args.no_tracing and not args.url:
                with (
                    otlp_sink() as collector,
                    dev_or_given(args, OTEL_EXPORTER_OTLP_ENDPOINT=collector) as (traced, tkey, _),
                ):
                    asyncio.run(tracing_cost(args, (url, key), (traced, tkey)))


if __name__ == "__main__":
    main()
