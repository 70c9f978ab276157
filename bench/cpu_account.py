"""CPU accounting for the benches: each process's CPU between two readings, per unit of work,
and what the machine's cores leave for a target once its raw work is priced."""

from __future__ import annotations

import contextlib
import os

import psutil
import psycopg


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """User + system CPU of each process so far; "postgres" adds up its backends."""
    times = {}
    for name, pid in pids.items():
        with contextlib.suppress(psutil.NoSuchProcess):
            process = psutil.Process(pid)
            family = [process, *process.children()] if name == "postgres" else [process]
            times[name] = sum(_cpu(p) for p in family)
    return times


def machine_seconds() -> dict[str, float]:
    """The whole machine's CPU seconds so far, every core: busy, idle, and stolen by the
    hypervisor (time this virtual machine was ready to run but another guest ran)."""
    t = psutil.cpu_times()
    busy = t.user + t.nice + t.system + t.irq + t.softirq
    return {"busy": busy, "idle": t.idle + t.iowait, "stolen": t.steal}


def machine_share(before: dict[str, float], after: dict[str, float]) -> str:
    """How the machine's cores spent the time between two readings."""
    spent = {name: after[name] - before[name] for name in after}
    total = sum(spent.values()) or 1.0
    return "machine: " + ", ".join(f"{name} {t / total:.0%}" for name, t in spent.items())


def postgres_by_client(url: str, postgres_pid: int) -> dict[str, float]:
    """CPU so far of Postgres's processes, by the application name of the client each backend
    serves (the background processes by their kind): which client's SQL the server works for."""
    with psycopg.connect(url, autocommit=True) as conn:
        names = dict(
            conn.execute(
                "SELECT pid, coalesce(nullif(application_name, ''), backend_type)"
                " FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
            ).fetchall()
        )
    times: dict[str, float] = {}
    for child in psutil.Process(postgres_pid).children():
        name = names.get(child.pid, "ended or not in pg_stat_activity")
        times[name] = times.get(name, 0.0) + _cpu(child)
    return times


def per_client(before: dict[str, float], after: dict[str, float], count: int) -> str:
    """Each client's Postgres CPU (ms) per unit of work between two readings, largest first."""
    spent = {n: (after[n] - before.get(n, 0.0)) * 1000 / max(1, count) for n in after}
    return ", ".join(f"{n} {ms:.2f}" for n, ms in sorted(spent.items(), key=lambda i: -i[1]))


def busy(before: dict[str, float], after: dict[str, float], seconds: float) -> str:
    """Each process's share of a core between two readings."""
    return ", ".join(f"{n} {(after[n] - before.get(n, 0)) / seconds:.0%}" for n in after)


def cpu_ms_per(before: dict[str, float], after: dict[str, float], count: float) -> float:
    """Milliseconds of CPU, all processes together, per unit of work between two readings."""
    return sum(after[n] - before.get(n, 0) for n in after) * 1000 / max(1.0, count)


def machine_bound(
    ceiling: float, posts: float, ingest_ms: float, post_ms: float, open_ms: float
) -> str:
    """The targets' raw work (events at the API alone's CPU cost, closed-loop and as offered
    open-loop, deliveries at plain aiohttp's) next to the machine's cores: what is left for
    claiming and recording, or that none is."""
    cores = os.cpu_count() or 1
    lines = [f"the machine's bound: {cores} cores; raw work priced at the ceilings' CPU"]
    targets = [
        ("fan-out 1 at 0.8 of the API alone", 0.8 * ceiling, 0.8 * ceiling, ingest_ms),
        ("  the same, events priced open-loop", 0.8 * ceiling, 0.8 * ceiling, open_ms),
        ("fan-out 10 at 0.6 of the aiohttp ceiling", 0.6 * posts / 10, 0.6 * posts, ingest_ms),
    ]
    for name, events, deliveries, event_ms in targets:
        raw = (events * event_ms + deliveries * post_ms) / 1000
        left = cores - raw
        verdict = (
            f"{left:.2f} cores left to claim and record: {left * 1e6 / deliveries:.0f} µs per delivery"
            if left > 0
            else "beyond the machine before any claim or record"
        )
        lines.append(
            f"  {name}: {events:.0f} events/s, {deliveries:.0f} deliveries/s need "
            f"{raw:.2f} cores of raw work; {verdict}"
        )
    return "\n".join(lines)


def _cpu(process: psutil.Process) -> float:
    with contextlib.suppress(psutil.NoSuchProcess):
        t = process.cpu_times()
        return t.user + t.system
    return 0.0
