"""Sustained throughput end to end, as production runs it: a Postgres, `eventgate serve`, N
`eventgate worker` processes and a receiver, each a process of its own, fed open-loop.

    uv run python bench/sustained.py [--workers 1] [--rates 100,200,400] [--fan-out 1]
                                     [--seconds 10] [--statements]

For each offered rate it POSTs single events on a fixed schedule (whether or not earlier ones
were answered), then prints: the ingest rate achieved, deliveries/s, the latency from each
POST's scheduled time to its arrival at the receiver (p50/p95/p99/max), the backlog left when
the step ended and how long it took to drain, and each process's CPU. In the same run it
measures the API alone (the same POSTs, closed-loop, with no endpoint to fan out to) as the
ceiling, and prints the highest offered rate that kept p99 under 1 s as a ratio of it; plain
aiohttp POSTs to the same receiver are the ceiling of deliveries/s. Each ceiling's CPU per event
or POST (every process, Postgres's backends included) prices the targets' raw work, so the last
lines say how much of the machine is left for claiming and recording at each target (a lower
bound of the raw work: an event with deliveries costs more to ingest than one without). With
--statements each step also shows the SQL it cost per delivered event (pg_stat_statements).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import psycopg

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench.common import ROOT, use_bench_encryption_key
from bench.cpu_account import (
    busy,
    cpu_ms_per,
    cpu_seconds,
    machine_bound,
    per_client,
    postgres_by_client,
)
from bench.open_loop import api_alone, closed_loop, offer, percentiles
from db import migrate
from db.embedded import EmbeddedPostgres, server_pid

RECEIVER = """
import json, sys, time
from aiohttp import web
arrivals = []
async def hook(request):
    body = await request.json()
    arrivals.append(time.time() - body["payload"]["at"])
    return web.Response(status=204)
async def stats(request):
    return web.json_response(arrivals)
async def reset(request):
    arrivals.clear()
    return web.Response(status=204)
app = web.Application()
app.router.add_post("/hook/{n}", hook)
app.router.add_get("/stats", stats)
app.router.add_post("/reset", reset)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def processes(
    url: str, args: argparse.Namespace, postgres_pid: int, **extra_env: str
) -> Iterator[dict[str, object]]:
    """The API, the workers and the receiver, each its own process (with `extra_env`);
    yields where they are and their environment."""
    env = {
        **os.environ,
        "EVENTGATE_DATABASE_URL": url,
        "EVENTGATE_ALLOW_PRIVATE_DESTINATIONS": "true",
        "EVENTGATE_ACCESS_LOG": "false",
        "EVENTGATE_LOG_LEVEL": "warning",
        **extra_env,
    }
    api_port, hook_port = free_port(), free_port()
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


def make_key(url: str, tenant: str) -> str:
    """An unlimited admin key of a new tenant, through the operator's CLI."""
    env = {**os.environ, "EVENTGATE_DATABASE_URL": url}
    run = {"env": env, "cwd": ROOT, "capture_output": True, "text": True, "check": True}
    subprocess.run([sys.executable, "-m", "cli", "tenants", "create", tenant], **run)
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "keys",
            "create",
            "--tenant",
            tenant,
            "--name",
            "bench",
            "--scopes",
            "admin",
        ],
        **run,
    )
    key = created.stdout.strip().split("=", 1)[1]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE api_keys SET rate_limit_tier = 'unlimited'")
    return key


async def post_ceiling(hook: str, seconds: float, clients: int = 100) -> float:
    """Plain aiohttp POSTs/s of the same body to the same receiver (the delivery ceiling)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:
        rate = await closed_loop(session, f"{hook}/hook/0", 204, clients, seconds)
    await arrivals(hook, reset=True)
    return rate


def track_statements(server: EmbeddedPostgres) -> str:
    """Load pg_stat_statements (the server restarts) so each step can show its SQL cost."""
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        conn.execute("ALTER SYSTEM SET pg_stat_statements.track_planning = on")
    server.stop()
    url = server.start()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return url


def reset_statements(url: str) -> None:
    """Start counting statements afresh."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")


def print_statements(url: str, delivered: int, top: int = 8) -> None:
    """The statements that took the most server time, per delivered event."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT calls, total_exec_time + total_plan_time,"
            " regexp_replace(query, '\\s+', ' ', 'g'), plans"
            " FROM pg_stat_statements ORDER BY 2 DESC"
        ).fetchall()
    per = max(1, delivered)
    total_ms = sum(row[1] for row in rows)
    calls = sum(row[0] for row in rows)
    print(
        f"{'':18}SQL per delivery: {calls / per:.1f} statements, "
        f"{total_ms / per:.3f} ms planning and executing"
    )
    # A statement planned at most calls has no generic plan: Postgres plans it afresh each time.
    for n_calls, ms, query, plans in rows[:top]:
        print(
            f"{'':20}{n_calls / per:5.2f} x {ms / max(1, n_calls):6.3f} ms  "
            f"planned {plans / max(1, n_calls):4.0%}  {query[:80]}"
        )


def backlog(url: str) -> int:
    """Deliveries not yet succeeded."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM deliveries WHERE status <> 'succeeded'"
        ).fetchone()[0]


async def arrivals(hook: str, reset: bool = False) -> list[float]:
    """Latencies the receiver saw (and forget them when asked)."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{hook}/stats") as answer:
            found = await answer.json()
        if reset:
            await session.post(f"{hook}/reset")
    return found


async def step(
    url: str, where: dict, key: str, rate: float, args: argparse.Namespace
) -> tuple[float, float]:
    """One offered rate; prints its line and returns its p99 (s) and deliveries/s."""
    if args.statements:
        reset_statements(url)
    before = cpu_seconds(where["pids"] | {"this bench": os.getpid()})
    clients_before = postgres_by_client(url, where["pids"]["postgres"])
    accepted, took, answered = await offer(where["api"], key, rate, args.seconds)
    left = backlog(url)
    drain_started = time.monotonic()
    while backlog(url) and time.monotonic() - drain_started < args.drain:
        await asyncio.sleep(0.2)
    drained = time.monotonic() - drain_started
    after = cpu_seconds(where["pids"] | {"this bench": os.getpid()})
    clients_after = postgres_by_client(url, where["pids"]["postgres"])
    seen = await arrivals(where["hook"], reset=True)
    p99 = statistics.quantiles(seen, n=100)[98] if len(seen) > 1 else float("nan")
    delivered = len(seen) / (took + drained)
    postgres_ms = (after["postgres"] - before["postgres"]) * 1000 / max(1, len(seen))
    print(
        f"offered {rate:6.0f}/s  ingest {accepted / took:6.0f}/s  "
        f"deliveries {delivered:6.0f}/s  {percentiles(seen)}  backlog {left} "
        f"(drained in {drained:.1f} s)\n{'':18}answered {percentiles(answered)}"
        f"\n{'':18}cpu per core: {busy(before, after, took)}; "
        f"postgres {postgres_ms:.2f} ms per delivery, all processes "
        f"{cpu_ms_per(before, after, len(seen)):.2f} ms per delivery\n{'':18}postgres by "
        f"client, ms per delivery: {per_client(clients_before, clients_after, len(seen))}"
    )
    if args.statements:
        print_statements(url, len(seen))
    return p99, delivered


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


async def run(url: str, args: argparse.Namespace, postgres_pid: int) -> None:
    key, alone_key = make_key(url, "bench"), make_key(url, "alone")
    with processes(url, args, postgres_pid) as where:
        await wait_ready(where["api"], where["hook"])
        pids = {**where["pids"], "this bench": os.getpid()}
        before = cpu_seconds(pids)
        started = time.monotonic()
        ceiling = await api_alone(where["api"], alone_key, 5.0)
        after, took = cpu_seconds(pids), time.monotonic() - started
        alone_cpu, ingest_ms = busy(before, after, took), cpu_ms_per(before, after, ceiling * took)
        started = time.monotonic()
        posts = await post_ceiling(where["hook"], 5.0)
        took, done = time.monotonic() - started, cpu_seconds(pids)
        posts_cpu, post_ms = busy(after, done, took), cpu_ms_per(after, done, posts * took)
        async with aiohttp.ClientSession(headers={"X-API-Key": key}) as session:
            for n in range(args.fan_out):
                hook = {"url": f"{where['hook']}/hook/{n}"}
                async with session.post(f"{where['api']}/v1/endpoints", json=hook) as r:
                    assert r.status == 201, await r.text()
        print(
            f"machine: {os.cpu_count()} cores; {args.workers} worker(s), fan-out {args.fan_out}"
            f"\nceiling: the API alone, closed-loop, no endpoints  {ceiling:6.0f} events/s"
            f"\n{'':18}cpu per core: {alone_cpu}; all processes {ingest_ms:.2f} ms per event"
            f"\nceiling: plain aiohttp POSTs to the receiver      {posts:6.0f} /s"
            f"\n{'':18}cpu per core: {posts_cpu}; all processes {post_ms:.2f} ms per POST"
        )
        target = round(0.8 * ceiling)
        open_ms = await alone_open_loop(where, alone_key, target, args.seconds)
        best, most = 0.0, 0.0
        for rate in args.rates:
            p99, delivered = await step(url, where, key, rate, args)
            most = max(most, delivered)
            if p99 < 1.0:
                best = max(best, rate)
        print(
            f"highest offered rate with p99 < 1 s: {best:.0f}/s = {best / ceiling:.2f} of the ceiling"
            f"\nmost deliveries/s: {most:.0f} = {most / posts:.2f} of the aiohttp ceiling"
            f"\n{machine_bound(ceiling, posts, ingest_ms, post_ms, open_ms)}"
        )


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
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--fan-out", type=int, default=1)
    parser.add_argument(
        "--rates", type=lambda s: [float(r) for r in s.split(",")], default=[100, 200, 400]
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--drain", type=float, default=60.0)
    parser.add_argument(
        "--statements", action="store_true", help="print each step's SQL cost per delivery"
    )
    args = parser.parse_args()
    use_bench_encryption_key()
    with migrated_postgres("eventgate-sustained-", statements=args.statements) as (url, pid):
        asyncio.run(run(url, args, pid))


if __name__ == "__main__":
    main()
