"""Ingest throughput: POST /v1/events and /v1/events/batch against a real Eventgate, next to
ceilings measured in the same run on the same database: a bare Litestar app served by uvicorn
whose one route runs the same insert (the framework ceiling), the same app answering with
Eventgate's body and headers (the price of the answer the API promises), and the same insert
sent straight from psycopg (the database ceiling). Four `eventgate serve` processes show what
request logging costs (on and off), what is left with every optional bookkeeping off (rate
limits, request logs, access log), and what OpenTelemetry tracing costs (on, exporting every
span by OTLP/HTTP to a sink in this process).

    uv run python bench/ingest.py [--concurrency 32] [--seconds 10] [--rounds 5]

Starts `eventgate dev` on a free port with a throw-away data dir (or uses --url, --key and
--database-url of a running Eventgate), then prints each figure with its ceiling and ratio.
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
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import psycopg

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench.common import ROOT, dev_or_given, event_row, free_port, otlp_sink, tenant_of
from db import events

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
    """The statement the API runs for one event of a type with no schema (no endpoints: the
    fan-out inserts nothing and nothing is announced), one transaction each, from psycopg."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def writer() -> None:
        nonlocal done
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            while time.perf_counter() < deadline:
                row = event_row(tenant_id, BODY)
                await events.insert_with_fan_out(
                    conn, [row], only_unchecked=True, after_commit=True
                )
                done += 1

    await asyncio.gather(*(writer() for _ in range(connections)))
    return done


@contextlib.contextmanager
def bare_litestar(database_url: str, tenant_id: uuid.UUID, answer: str = "") -> Iterator[str]:
    """Serve bench/bare_app.py with uvicorn on a free port (answering as Eventgate does with
    `answer="eventgate"`); yields its base URL."""
    port = free_port()
    env = {**os.environ, "BENCH_DATABASE_URL": database_url, "BENCH_TENANT_ID": str(tenant_id)}
    env["BENCH_ANSWER"] = answer
    env["BENCH_POOL_MAX_SIZE"] = str(POOL_MAX_SIZE)
    command = [sys.executable, "-m", "uvicorn", "bench.bare_app:create", "--factory"]
    options = ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    with listening([*command, *options], port, env) as url:
        yield url


@contextlib.contextmanager
def serve(database_url: str, **env: str) -> Iterator[str]:
    """An `eventgate serve` process (API only) on the same database; yields its base URL."""
    port = free_port()
    environ = {**os.environ, "EVENTGATE_DATABASE_URL": database_url, **env}
    environ.setdefault("EVENTGATE_LOG_FORMAT", "json")
    command = [sys.executable, "-m", "cli", "serve", "--port", str(port)]
    with listening(command, port, environ, stderr=subprocess.DEVNULL) as url:
        yield url


@contextlib.contextmanager
def listening(command: list[str], port: int, env: dict, **popen: Any) -> Iterator[str]:
    """Run `command` until the block ends; yields its URL once `port` accepts connections."""
    process = subprocess.Popen(command, env=env, cwd=ROOT, **popen)
    SERVING_PIDS[f"http://127.0.0.1:{port}"] = process.pid
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


# Every server of the bench, Eventgate's and the bare app's alike, gets pools of this size: seven
# servers with pools of 20 would ask for more connections than the database's 100, and the last
# started would spend the run failing to connect.
POOL_MAX_SIZE = 8

# The process serving each URL this bench started, whose CPU time a load is charged.
SERVING_PIDS: dict[str, int] = {}


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rate(latencies: list[float], seconds: float) -> str:
    """Requests per second with p50 and p99 latency."""
    q = statistics.quantiles(latencies, n=100)
    rps = len(latencies) / seconds
    return f"{rps:9.0f} req/s   p50 {q[49] * 1000:.1f} ms  p99 {q[98] * 1000:.1f} ms"


# The per-request bookkeeping an operator may turn off: rate limits, request logs, access log.
# Without them, what is left is what every authenticated request does (key, scope, strict
# JSON, Idempotency-Key, request id, security headers, metrics).
BOOKKEEPING_OFF = {
    "EVENTGATE_RATE_LIMITS_ENABLED": "false",
    "EVENTGATE_REQUEST_LOGS_ENABLED": "false",
    "EVENTGATE_ACCESS_LOG": "false",
}


def limited_key(database_url: str, tenant_id: uuid.UUID) -> str:
    """A key on a tier whose limits never bite but are counted on every request."""
    from app.keys.services import issue

    async def create() -> str:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await conn.execute(
                "INSERT INTO rate_limit_tiers (name, per_minute, per_hour, per_day, burst)"
                " VALUES ('bench', 1000000000, 1000000000, 1000000000, 1000000000)"
                " ON CONFLICT (name) DO NOTHING"
            )
            key = await issue(
                conn,
                tenant_id=tenant_id,
                name="bench",
                scopes=["events:write"],
                rate_limit_tier="bench",
            )
        return key.key

    return asyncio.run(create())


def interleaved(
    load: dict[str, tuple[str, str]], clients: int, seconds: float, rounds: int
) -> tuple[dict[str, list[list[float]]], dict[str, float]]:
    """Latencies per load and round, the loads taking turns (this machine's speed drifts, so
    figures compared as a ratio are measured side by side, round after round); and the serving
    process's CPU time per request of each load (what a request costs the server, which the
    machine's noise moves far less than it moves throughput)."""
    results: dict[str, list[list[float]]] = {name: [] for name in load}
    cpu = dict.fromkeys(load, 0.0)
    for _ in range(rounds):
        for name, (url, key) in load.items():
            before = cpu_seconds(SERVING_PIDS[url])
            results[name].append(asyncio.run(http_load(url, key, clients, seconds / rounds)))
            cpu[name] += cpu_seconds(SERVING_PIDS[url]) - before
    served = {name: sum(len(run) for run in runs) for name, runs in results.items()}
    return results, {name: cpu[name] / served[name] for name in load}


def cpu_line(cpu: dict[str, float], per: float = 0.001) -> str:
    """Each load's CPU per request, in ms or as a ratio to `per`."""
    return "  ".join(f"{name} {value / per:.2f}" for name, value in cpu.items())


def report(args: argparse.Namespace, url: str, key: str, database_url: str) -> None:
    tenant_id = tenant_of(database_url, key)
    seconds, clients, rounds = args.seconds, args.concurrency, args.rounds
    counted = limited_key(database_url, tenant_id)  # `key` is the unlimited admin key
    pool = {"EVENTGATE_POOL_MAX_SIZE": str(POOL_MAX_SIZE)}
    # Eventgate is measured as it runs in production, `eventgate serve` (the API alone), served
    # by uvicorn like the bare app; the `eventgate dev` process also runs a worker.
    with (
        bare_litestar(database_url, tenant_id) as bare_url,
        bare_litestar(database_url, tenant_id, answer="eventgate") as answering_url,
        serve(database_url, **pool) as api_url,
        serve(database_url, EVENTGATE_REQUEST_LOGS_ENABLED="false", **pool) as unlogged_url,
        serve(database_url, **BOOKKEEPING_OFF, **pool) as plain_url,
        otlp_sink() as collector,
        serve(database_url, OTEL_EXPORTER_OTLP_ENDPOINT=collector, **pool) as traced_url,
    ):
        warm = ((bare_url, key), (answering_url, key), (api_url, key), (api_url, counted))
        for warm_url, warm_key in warm:
            asyncio.run(http_load(warm_url, warm_key, clients, 1.0))
        asyncio.run(http_load(unlogged_url, key, clients, 1.0))
        asyncio.run(http_load(plain_url, key, clients, 1.0))
        asyncio.run(http_load(traced_url, key, clients, 1.0))
        loads = {
            "api": (api_url, key),
            "limited": (api_url, counted),
            "unlogged": (unlogged_url, key),
            "plain": (plain_url, key),
            "traced": (traced_url, key),
            "bare": (bare_url, key),
            "answering": (answering_url, key),
        }
        runs, cpu = interleaved(loads, clients, seconds, rounds)
    ceiling = asyncio.run(insert_ceiling(database_url, tenant_id, clients, seconds)) / seconds
    batch = asyncio.run(batch_load(url, key, 2, seconds, 500)) / seconds
    api, limited, unlogged, plain, traced, bare, answering = (
        [x for run in runs[n] for x in run] for n in loads
    )

    def median_ratio(top: str, bottom: str) -> str:
        ratios = sorted(len(a) / len(b) for a, b in zip(runs[top], runs[bottom], strict=True))
        listed = ", ".join(f"{r:.2f}" for r in ratios)
        return f"{ratios[rounds // 2]:9.2f}  (median of {rounds} interleaved rounds: {listed})"

    print(f"machine: {os.cpu_count()} cores; {clients} clients; {seconds:.0f} s each, in turns")
    print(f"POST /v1/events (serve)         {rate(api, seconds)}")
    print(f"  with rate limits counted      {rate(limited, seconds)}")
    print(f"  without request logs          {rate(unlogged, seconds)}")
    print(f"  without any bookkeeping       {rate(plain, seconds)}")
    print(f"  with OTLP tracing on          {rate(traced, seconds)}")
    print(f"ceiling: bare Litestar INSERT   {rate(bare, seconds)}")
    print(f"  answering as Eventgate does   {rate(answering, seconds)}")
    print(f"ratio to the framework ceiling  {median_ratio('api', 'bare')}")
    print(f"  with rate limits counted      {median_ratio('limited', 'bare')}")
    print(f"  without any bookkeeping       {median_ratio('plain', 'bare')}")
    print(f"Eventgate's answer / bare's     {median_ratio('answering', 'bare')}")
    print(f"ratio to the answering ceiling  {median_ratio('api', 'answering')}")
    print(f"  with rate limits counted      {median_ratio('limited', 'answering')}")
    print(f"rate limits counted / not       {median_ratio('limited', 'api')}")
    print(f"request logs on / off           {median_ratio('api', 'unlogged')}")
    print(f"tracing on / off                {median_ratio('traced', 'api')}")
    print(f"server CPU per request (ms)     {cpu_line(cpu)}")
    print(f"  ratio to bare Litestar's      {cpu_line(cpu, cpu['bare'])}")
    print(f"ceiling: psycopg INSERT         {ceiling:9.0f} rows/s  ({clients} connections)")
    print(f"ratio to the database ceiling   {len(api) / seconds / ceiling:9.2f}")
    print(f"POST /v1/events/batch           {batch:9.0f} events/s  (500 per request, 2 clients)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per load")
    parser.add_argument("--url")
    parser.add_argument("--key")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with dev_or_given(args) as (url, key, database_url):
        report(args, url, key, database_url)


if __name__ == "__main__":
    main()
