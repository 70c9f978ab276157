"""Whether workers scale: the same backlog drained by one `eventgate worker` and by two, first
on one machine (the processes share every core), then as if on two machines (each worker held
to a CPU budget of its own, so the workers, not the database, are what runs out).

    uv run python bench/worker_scaling.py [--events 20000] [--budget 0.25] [--rounds 2]

A Postgres, `eventgate serve` and a receiver run as processes of their own; the backlog is
ingested through /v1/events/batch (fan-out 1) behind a disabled endpoint, the workers start,
and once their engines are connected the endpoint is enabled and the receiver times the drain
from its first arrival to its last. A budget is a cgroup CPU quota (cgroup v2 `cpu.max` or v1
`cpu.cfs_quota_us`, which needs root); where neither can be written, each budgeted worker is
pinned to a core of its own instead (taskset's way), and the line says so. Each two-worker
figure is printed as a ratio of the one-worker drain of the same round.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import psutil
import psycopg

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench.common import ROOT, make_key, use_bench_encryption_key
from bench.cpu_account import cpu_seconds
from bench.receiver import arrivals
from bench.sustained import backlog, migrated_postgres, processes, wait_ready
from workers.engine import LISTENER_NAME

CGROUP_V2 = Path("/sys/fs/cgroup")
CGROUP_V1_CPU = Path("/sys/fs/cgroup/cpu")


def quota_group(name: str, cores: float) -> Path | None:
    """A cgroup allowed `cores` of CPU time (None where none can be made here)."""
    period = 100_000
    for root, marker, limit, value in (
        (CGROUP_V2, "cgroup.controllers", "cpu.max", f"{int(cores * period)} {period}"),
        (CGROUP_V1_CPU, "cpu.cfs_quota_us", "cpu.cfs_quota_us", str(int(cores * period))),
    ):
        if not (root / marker).exists() or not os.access(root, os.W_OK):
            continue
        group = root / name
        with contextlib.suppress(OSError):
            group.mkdir(exist_ok=True)
            if root == CGROUP_V1_CPU:
                (group / "cpu.cfs_period_us").write_text(str(period))
            (group / limit).write_text(value)
            return group
    return None


@contextlib.contextmanager
def budgets(count: int, cores: float | None) -> Iterator[tuple[list[Callable[[], None]], str]]:
    """For each of `count` workers, what its child runs before exec to enter its budget, and
    how the budget is kept ("none", "cgroup quota" or "pinned to a core")."""
    if cores is None:
        yield [lambda: None] * count, "none"
        return
    groups = [quota_group(f"eventgate-bench-worker-{n}", cores) for n in range(count)]
    try:
        if all(groups):
            yield [_enter(group) for group in groups], f"cgroup quota of {cores:g} core each"
        else:
            cpus = sorted(os.sched_getaffinity(0))
            yield [_pin(cpus[n % len(cpus)]) for n in range(count)], "pinned to a core each"
    finally:
        for group in filter(None, groups):
            with contextlib.suppress(OSError):
                group.rmdir()


def _enter(group: Path) -> Callable[[], None]:
    def enter() -> None:
        (group / "cgroup.procs").write_text(str(os.getpid()))

    return enter


def _pin(cpu: int) -> Callable[[], None]:
    return lambda: os.sched_setaffinity(0, {cpu})


async def ingest_backlog(base: str, key: str, events: int, size: int = 500) -> None:
    """`events` events through the batch route, no worker running."""
    async with aiohttp.ClientSession(headers={"X-API-Key": key}) as session:
        for start in range(0, events, size):
            body = [
                {"source": "bench", "event_type": "bench.scaling", "payload": {"n": n, "at": 0}}
                for n in range(start, min(events, start + size))
            ]
            async with session.post(f"{base}/v1/events/batch", json={"events": body}) as answer:
                assert answer.status < 300, await answer.text()


async def drain(
    where: dict, key: str, args: argparse.Namespace, count: int, cores: float | None
) -> tuple[float, str, float, float]:
    """Deliveries/s of `count` workers draining a fresh backlog, the budget's kind, and the
    cores busy while they drained: the workers', and the whole machine's."""
    await switch(where, key, "disable")
    await ingest_backlog(where["api"], key, args.events)
    await arrivals(where["hook"], reset=True)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": ROOT}
    with budgets(count, cores) as (enters, kind):
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "cli", "worker"],
                env=where["env"] | {"PGAPPNAME": f"worker {n + 1}"},
                preexec_fn=enter,
                **quiet,
            )
            for n, enter in enumerate(enters)
        ]
        try:
            await engines_connected(where["url"], count)
            pids = {f"worker {n + 1}": w.pid for n, w in enumerate(workers)}
            before, machine_before, started = cpu_seconds(pids), _busy(), time.monotonic()
            await switch(where, key, "enable")
            while backlog(where["url"]) and time.monotonic() - started < args.timeout:
                await asyncio.sleep(0.05)
            took = time.monotonic() - started
            used = sum(cpu_seconds(pids).values()) - sum(before.values())
            machine = (_busy() - machine_before) / took
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(timeout=60)
    seen = await arrivals(where["hook"], reset=True)
    assert len(seen) >= args.events, f"{len(seen)} of {args.events} delivered in {took:.0f} s"
    return (len(seen) - 1) / (max(seen) - min(seen)), kind, used / took, machine


async def switch(where: dict, key: str, action: str) -> None:
    """Disable or enable the endpoint: the backlog waits behind it until the workers are up."""
    url = f"{where['api']}/v1/endpoints/{where['endpoint']}/{action}"
    async with aiohttp.ClientSession(headers={"X-API-Key": key}) as session:
        async with session.post(url) as answer:
            assert answer.status < 300, await answer.text()


async def engines_connected(url: str, count: int) -> None:
    """Until `count` workers' delivery engines are connected (each has its listener)."""
    for _ in range(600):
        with psycopg.connect(url) as conn:
            found = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                (LISTENER_NAME,),
            ).fetchone()[0]
        if found >= count:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{count} workers did not start")


def _busy() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


async def run(url: str, args: argparse.Namespace, postgres_pid: int) -> None:
    key = make_key(url, "bench")
    setup = argparse.Namespace(workers=0)
    with processes(url, setup, postgres_pid) as where:
        where["url"] = url
        await wait_ready(where["api"], where["hook"])
        async with aiohttp.ClientSession(headers={"X-API-Key": key}) as session:
            hook = {"url": f"{where['hook']}/hook/0"}
            async with session.post(f"{where['api']}/v1/endpoints", json=hook) as answer:
                assert answer.status == 201, await answer.text()
                where["endpoint"] = (await answer.json())["endpoint"]["id"]
        print(
            f"machine: {os.cpu_count()} cores; a backlog of {args.events} events, fan-out 1",
            flush=True,
        )
        for title, cores in (("one machine", None), ("two machines", args.budget)):
            ratios: list[float] = []
            for n in range(args.rounds):
                one, kind, one_busy, one_all = await drain(where, key, args, 1, cores)
                two, _, two_busy, two_all = await drain(where, key, args, 2, cores)
                ratios.append(two / one)
                print(
                    f"{title} (budget: {kind}), round {n + 1}: one worker {one:6.0f}/s "
                    f"({one_busy:.2f} cores; machine {one_all:.2f}), two workers {two:6.0f}/s "
                    f"({two_busy:.2f} cores; machine {two_all:.2f}) = {two / one:.2f} of one"
                )
            print(
                f"{title}: two workers / one, median of {args.rounds}: "
                f"{statistics.median(ratios):.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--budget", type=float, default=0.25, help="cores per worker")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    use_bench_encryption_key()
    with migrated_postgres("eventgate-scaling-") as (url, pid):
        asyncio.run(run(url, args, pid))


if __name__ == "__main__":
    main()
