"""Sustained throughput end to end, as production runs it: a Postgres, `eventgate serve`, N
`eventgate worker` processes and a receiver, each a process of its own, fed open-loop.

    uv run python bench/sustained.py [--workers 1,2] [--rates 100,200,0.8c] [--fan-out 1]
                                     [--seconds 10] [--latency-rate 200] [--statements]

For each offered rate (events/s, or a fraction of the ceiling: 0.8c) it POSTs single events
on a fixed schedule (whether or not earlier ones were answered), then prints: the ingest rate achieved, deliveries/s, the latency from each
POST's scheduled time to its arrival at the receiver (p50/p95/p99/max), the backlog left when
the step ended and how long it took to drain, and each process's CPU. In the same run it
measures the API alone (the same POSTs, closed-loop, with no endpoint to fan out to) as the
ceiling, and prints the highest offered rate that kept p99 under 1 s as a ratio of it; plain
aiohttp POSTs to the same receiver are the ceiling of deliveries/s. Each ceiling's CPU per event
or POST (every process, Postgres's backends included) prices the targets' raw work, so the last
lines say how much of the machine is left for claiming and recording at each target (a lower
bound of the raw work: an event with deliveries costs more to ingest than one without). With
--statements each step also shows the SQL it cost per delivered event (pg_stat_statements).
With --workers 1,2,2,1 each count takes its turns in that order, against the same database
and ceilings; each turn first delivers 200 events that no figure counts (its warm-up). The
API alone is measured again at the end, against the lower of its two figures. The latency
floor at --latency-rate (the API alone's answer plus a plain POST, both open-loop) is the
part of a step's e2e p50 that the machine itself sets. Each step's CPU line ends with how
the machine's cores spent the step (busy, idle, stolen by the hypervisor)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import aiohttp
import psycopg

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench.common import ROOT, free_port, make_key, use_bench_encryption_key
from bench.cpu_account import (
    busy,
    cpu_ms_per,
    cpu_seconds,
    machine_bound,
    machine_seconds,
    machine_share,
    per_client,
    postgres_by_client,
)
from bench.open_loop import aiohttp_closed_loop, api_alone, offer, offer_to, percentiles
from bench.receiver import RECEIVER, arrivals
from bench.statements import print_statements, reset_statements, track_statements
from db import migrate
from db.embedded import EmbeddedPostgres, server_pid


@contextlib.contextmanager
def processes(
    url: str,
    args: argparse.Namespace,
    postgres_pid: int,
    hook_port: int | None = None,
    **extra_env: str,
) -> Iterator[dict[str, object]]:
    """The API, the workers and the receiver (on `hook_port` if given), each its own process
    (with `extra_env`); yields where they are and their environment."""
    env = {
        **os.environ,
        "EVENTGATE_DATABASE_URL": url,
        "EVENTGATE_ALLOW_PRIVATE_DESTINATIONS": "true",
        "EVENTGATE_ACCESS_LOG": "false",
        "EVENTGATE_LOG_LEVEL": "warning",
        **extra_env,
    }
    api_port, hook_port = free_port(), hook_port or free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": ROOT}
    # libpq names each process's connections, so Postgres's CPU splits by client.
    api = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--port", str(api_port)],
        env=env | {"PGAPPNAME": "api"},
        **quiet,
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "cli", "worker"], env=env | {"PGAPPNAME": f"worker {n}"}, **quiet
        )
        for n in range(1, args.workers + 1)
    ]
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(hook_port)], **quiet)
    try:
        yield {
            "api": f"http://127.0.0.1:{api_port}",
            "hook": f"http://127.0.0.1:{hook_port}",
            "env": env,
            "pids": {"postgres": postgres_pid, "api": api.pid, "receiver": receiver.pid}
            | {f"worker {n + 1}": w.pid for n, w in enumerate(workers)},
        }
    finally:
        for process in [api, *workers, receiver]:
            process.terminate()
        for process in [api, *workers, receiver]:
            process.wait(timeout=60)


async def wait_ready(base: str, hook: str) -> None:
    """Until the API and the receiver answer."""
    async with aiohttp.ClientSession() as session:
        for url in (f"{base}/health/ready", f"{hook}/stats"):
            for _ in range(300):
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(url) as answer:
                        if answer.status == 200:
                            break
                await asyncio.sleep(0.1)


async def post_ceiling(hook: str, seconds: float, clients: int = 100) -> float:
    """Plain aiohttp POSTs/s of the same body to the same receiver (the delivery ceiling)."""
    rate = await aiohttp_closed_loop(f"{hook}/hook/0", 204, clients, seconds)
    await arrivals(hook, reset=True)
    return rate


def backlog(url: str) -> int:
    """Deliveries not yet succeeded."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM deliveries WHERE status <> 'succeeded'"
        ).fetchone()[0]


async def step(
    url: str, where: dict, key: str, rate: float, args: argparse.Namespace
) -> tuple[float, float, float]:
    """One offered rate; prints its line and returns its p50 and p99 (s) and deliveries/s."""
    if args.statements:
        reset_statements(url)
    before = cpu_seconds(where["pids"] | {"this bench": os.getpid()})
    clients_before, machine_before = (
        postgres_by_client(url, where["pids"]["postgres"]),
        machine_seconds(),
    )
    accepted, took, answered = await offer(where["api"], key, rate, args.seconds)
    left = backlog(url)
    drain_started = time.monotonic()
    while backlog(url) and time.monotonic() - drain_started < args.drain:
        await asyncio.sleep(0.2)
    drained = time.monotonic() - drain_started
    after = cpu_seconds(where["pids"] | {"this bench": os.getpid()})
    clients_after, machine_after = (
        postgres_by_client(url, where["pids"]["postgres"]),
        machine_seconds(),
    )
    seen = await arrivals(where["hook"], reset=True)
    cuts = statistics.quantiles(seen, n=100) if len(seen) > 1 else [float("nan")] * 99
    delivered = len(seen) / (took + drained)
    postgres_ms = (after["postgres"] - before["postgres"]) * 1000 / max(1, len(seen))
    print(
        f"offered {rate:6.0f}/s  ingest {accepted / took:6.0f}/s  "
        f"deliveries {delivered:6.0f}/s  {percentiles(seen)}  backlog {left} "
        f"(drained in {drained:.1f} s)\n{'':18}answered {percentiles(answered)}"
        f"\n{'':18}cpu per core: {busy(before, after, took)}; "
        f"postgres {postgres_ms:.2f} ms per delivery, all processes "
        f"{cpu_ms_per(before, after, len(seen)):.2f} ms per delivery; "
        f"{machine_share(machine_before, machine_after)}\n{'':18}postgres by "
        f"client, ms per delivery: {per_client(clients_before, clients_after, len(seen))}"
    )
    if args.statements:
        print_statements(url, len(seen))
    return cuts[49], cuts[98], delivered


async def alone_open_loop(where: dict, key: str, rate: float, seconds: float) -> float:
    """The API alone (no endpoints) offered `rate` open-loop, as the steps are: prints what it
    answered and how fast; returns all processes' CPU (ms) per accepted event."""
    before = cpu_seconds(where["pids"] | {"this bench": os.getpid()})
    accepted, took, answered = await offer(where["api"], key, rate, seconds)
    after = cpu_seconds(where["pids"] | {"this bench": os.getpid()})
    cost = cpu_ms_per(before, after, accepted)
    print(
        f"the API alone, open-loop at {rate:.0f}/s: ingest {accepted / took:6.0f}/s, answered "
        f"{percentiles(answered)} after each POST's moment\n{'':18}cpu per core: "
        f"{busy(before, after, took)}; all processes {cost:.2f} ms per event"
    )
    return cost


async def latency_floor(where: dict, key: str, rate: float, seconds: float) -> float:
    """The least an event's trip can take at `rate` on this machine, nothing claimed or
    delivered: the API alone's answer plus a plain POST to the receiver, each offered open-loop
    at `rate`. Prints both; returns the sum of their p50s (s)."""
    _, _, api = await offer(where["api"], key, rate, seconds)
    _, _, plain = await offer_to(f"{where['hook']}/hook/0", {}, 204, rate, seconds)
    await arrivals(where["hook"], reset=True)
    floor = statistics.median(api) + statistics.median(plain)
    print(
        f"latency floor at {rate:.0f}/s: the API alone answered {percentiles(api)}"
        f"\n{'':18}plain POSTs to the receiver answered {percentiles(plain)}"
        f"\n{'':18}together p50 {floor * 1000:.1f} ms, before any claiming or delivering"
    )
    return floor


class Ceilings(NamedTuple):
    """What the machine does without the engine, measured once per run."""

    events: float  # the API alone, closed-loop, events/s
    posts: float  # plain aiohttp POSTs to the receiver, /s
    ingest_ms: float  # all processes' CPU per event of the API alone
    post_ms: float  # all processes' CPU per plain POST
    open_ms: float  # all processes' CPU per event of the API alone, open-loop
    floor: float  # the latency floor at --latency-rate, p50 (s)


async def measure_ceilings(where: dict, alone_key: str, args: argparse.Namespace) -> Ceilings:
    """The API alone and plain POSTs to the receiver, closed- and open-loop; prints them."""
    pids = {**where["pids"], "this bench": os.getpid()}
    before, machine_before = cpu_seconds(pids), machine_seconds()
    started = time.monotonic()
    ceiling = await api_alone(where["api"], alone_key, 5.0)
    after, took = cpu_seconds(pids), time.monotonic() - started
    alone_machine = machine_share(machine_before, machine_seconds())
    alone_cpu, ingest_ms = busy(before, after, took), cpu_ms_per(before, after, ceiling * took)
    started = time.monotonic()
    posts = await post_ceiling(where["hook"], 5.0)
    took, done = time.monotonic() - started, cpu_seconds(pids)
    posts_cpu, post_ms = busy(after, done, took), cpu_ms_per(after, done, posts * took)
    print(
        f"ceiling: the API alone, closed-loop, no endpoints  {ceiling:6.0f} events/s"
        f"\n{'':18}cpu per core: {alone_cpu}; all processes {ingest_ms:.2f} ms per event; "
        f"{alone_machine}"
        f"\nceiling: plain aiohttp POSTs to the receiver      {posts:6.0f} /s"
        f"\n{'':18}cpu per core: {posts_cpu}; all processes {post_ms:.2f} ms per POST"
    )
    open_ms = await alone_open_loop(where, alone_key, round(0.8 * ceiling), args.seconds)
    floor = await latency_floor(where, alone_key, args.latency_rate, args.seconds)
    return Ceilings(ceiling, posts, ingest_ms, post_ms, open_ms, floor)


async def steps(
    url: str, where: dict, key: str, args: argparse.Namespace, ceilings: Ceilings
) -> tuple[float, float]:
    """Every offered rate in turn; prints the summary and returns the highest rate whose p99
    stayed under 1 s and the most deliveries/s."""
    best, most, p50s = 0.0, 0.0, {}
    for asked in args.rates:
        # "0.8c": that fraction of the ceiling this run measured.
        rate = round(float(asked[:-1]) * ceilings.events) if asked.endswith("c") else float(asked)
        p50s[rate], p99, delivered = await step(url, where, key, rate, args)
        most = max(most, delivered)
        if p99 < 1.0:
            best = max(best, rate)
    if args.latency_rate in p50s:
        p50, floor = p50s[args.latency_rate], ceilings.floor
        print(
            f"e2e p50 at {args.latency_rate:.0f}/s: {p50 * 1000:.1f} ms = the floor "
            f"{floor * 1000:.1f} ms + {(p50 - floor) * 1000:.1f} ms claiming and delivering"
        )
    print(
        f"highest offered rate with p99 < 1 s: {best:.0f}/s = {best / ceilings.events:.2f} of "
        f"the ceiling\nmost deliveries/s: {most:.0f} = {most / ceilings.posts:.2f} of the "
        "aiohttp ceiling"
    )
    return best, most


async def run(url: str, args: argparse.Namespace, postgres_pid: int) -> None:
    key, alone_key = make_key(url, "bench"), make_key(url, "alone")
    print(f"machine: {os.cpu_count()} cores; fan-out {args.fan_out}")
    ceilings, turns, hook_port = None, [], free_port()
    # Each count of workers takes its turn against the same database, ceilings and receiver's
    # address (the endpoints').
    for count in args.workers:
        turn = argparse.Namespace(workers=count)
        with processes(url, turn, postgres_pid, hook_port) as where:
            await wait_ready(where["api"], where["hook"])
            if ceilings is None:
                ceilings = await measure_ceilings(where, alone_key, args)
                await add_endpoints(where, key, args.fan_out)
            print(f"--- {count} worker(s)")
            await warm_up(url, where, key)
            turns.append((count, *await steps(url, where, key, args, ceilings)))
    assert ceilings is not None
    with processes(url, argparse.Namespace(workers=0), postgres_pid, hook_port) as where:
        await wait_ready(where["api"], where["hook"])
        again = await api_alone(where["api"], alone_key, 5.0)
    low = min(again, ceilings.events)  # a machine that slowed meanwhile flatters no ratio
    best = max(b for _, b, _ in turns)
    print(
        f"ceiling again at the end: {again:.0f} events/s; best rate / the lower: {best / low:.2f}"
    )
    if len(turns) > 1:
        print(
            "workers: highest rate with p99 < 1 s / most deliveries/s: "
            + ", ".join(f"{n}: {b:.0f}/s / {m:.0f}/s" for n, b, m in turns)
        )
    print(
        machine_bound(
            ceilings.events, ceilings.posts, ceilings.ingest_ms, ceilings.post_ms, ceilings.open_ms
        )
    )


async def warm_up(url: str, where: dict, key: str) -> None:
    """Fresh processes open their pools' connections, prepare their statements and connect to
    the receiver on their first deliveries: 200 events at 100/s, delivered and not counted,
    so that the steps measure a running system."""
    await offer(where["api"], key, 100, 2.0)
    deadline = time.monotonic() + 30
    while backlog(url) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await arrivals(where["hook"], reset=True)
    print("warm-up: 200 events at 100/s delivered (not counted)")


async def add_endpoints(where: dict, key: str, fan_out: int) -> None:
    """`fan_out` endpoints at the receiver, each on its own path."""
    async with aiohttp.ClientSession(headers={"X-API-Key": key}) as session:
        for n in range(fan_out):
            hook = {"url": f"{where['hook']}/hook/{n}"}
            async with session.post(f"{where['api']}/v1/endpoints", json=hook) as r:
                assert r.status == 201, await r.text()


@contextlib.contextmanager
def migrated_postgres(prefix: str, statements: bool = False) -> Iterator[tuple[str, int]]:
    """A migrated Postgres of its own in a temporary directory: its URL and postmaster pid
    (with `statements`, pg_stat_statements loaded first)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        # Kept across a restart (statements); the temporary directory goes in the end.
        server = EmbeddedPostgres(Path(tmp) / "pg")
        url = server.start()
        try:
            if statements:
                url = track_statements(server)
            migrate.apply(url)
            pid = server_pid(server.data_dir)
            assert pid is not None, "the embedded Postgres wrote no postmaster.pid"
            yield url, pid
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--workers",
        type=lambda s: [int(n) for n in s.split(",")],
        default=[1],
        help="worker counts, each taking its turn (1,2: one worker, then two)",
    )
    parser.add_argument("--fan-out", type=int, default=1)
    parser.add_argument(
        "--rates",
        type=lambda s: s.split(","),
        default=["100", "200", "400"],
        help="events/s offered in turn; 0.8c is 0.8 of the API-alone ceiling",
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--drain", type=float, default=60.0)
    parser.add_argument(
        "--latency-rate", type=float, default=200.0, help="the rate whose latency floor to show"
    )
    parser.add_argument(
        "--statements", action="store_true", help="print each step's SQL cost per delivery"
    )
    args = parser.parse_args()
    use_bench_encryption_key()
    with migrated_postgres("eventgate-sustained-", statements=args.statements) as (url, pid):
        asyncio.run(run(url, args, pid))


if __name__ == "__main__":
    main()
