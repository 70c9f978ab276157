"""A soak: steady ingest and delivery for a long while, with retention short, as production
runs it (a Postgres, `eventgate serve`, `eventgate worker` and a receiver, each a process).

    uv run python bench/soak.py [--minutes 20] [--rate 100] [--history-rows 20000]

Retention is one day for every partitioned table. Partitions are daily, so a short soak would
never see one expire by itself: every minute the soak writes a day of history (copies of the
newest rows, dated two days ago, into that day's partitions: a day retention has just ended)
and queues `rotate_partitions`, which the worker runs under the load. Each minute prints:
ingest accepted and refused, the deliveries that arrived and their latency (p50/p99, from each
POST's scheduled time), the size of each partitioned table and its partition count, dead
tuples, the backlog, and the rotation (partitions dropped, how long it took). The end shows
whether latency stayed flat (last minutes against the first) and storage bounded (every
expired day gone; what remains is the retention's days and today's).

The ceiling, measured in the same run before the soak: plain aiohttp POSTs to the receiver.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aiohttp
import psycopg

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench.common import ROOT, make_key, use_bench_encryption_key
from bench.open_loop import body
from bench.receiver import arrivals
from bench.sustained import (
    backlog,
    migrated_postgres,
    post_ceiling,
    processes,
    wait_ready,
)
from db.partitions import PARTITIONED_TABLES

RETENTION = {
    "EVENTGATE_EVENT_RETENTION_DAYS": "1",
    "EVENTGATE_DELIVERY_RETENTION_DAYS": "1",
    "EVENTGATE_REQUEST_LOG_RETENTION_DAYS": "1",
}

# Copy the newest rows of a table into the partition of another day (created for it): a
# day of history whose retention has ended, its deliveries finished as such a day's are.
# Table names come from PARTITIONED_TABLES only.
BACKFILL = """
INSERT INTO {table}
SELECT (jsonb_populate_record(NULL::{table},
        to_jsonb(t) || jsonb_build_object('created_at', %(day)s::timestamptz)
        || CASE WHEN %(table)s = 'deliveries' THEN '{{"status": "succeeded"}}'::jsonb
                ELSE '{{}}'::jsonb END)).*
FROM (SELECT * FROM {table} WHERE created_at >= %(today)s ORDER BY created_at DESC
      LIMIT %(rows)s) t
"""

SIZES = """
SELECT p.relname, count(*), sum(pg_total_relation_size(c.oid)),
       sum(coalesce(s.n_dead_tup, 0)), min(right(c.relname, 8))
FROM pg_class p
JOIN pg_inherits i ON i.inhparent = p.oid
JOIN pg_class c ON c.oid = i.inhrelid
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE p.relname = ANY(%(tables)s)
GROUP BY p.relname
"""

LAST_ROTATION = """
SELECT result, duration_ms, outcome FROM task_runs
WHERE task = 'rotate_partitions' AND finished_at IS NOT NULL
ORDER BY started_at DESC LIMIT 1
"""


def backfill_expired_day(url: str, rows: int) -> date:
    """Write a day of history retention has just ended (two days ago) into every table."""
    today = datetime.now(UTC).date()
    day = today - timedelta(days=2)
    with psycopg.connect(url, autocommit=True) as conn:
        for table in PARTITIONED_TABLES:
            conn.execute(
                "SELECT eventgate_create_daily_partitions(%s::regclass, %s, 1)", (table, day)
            )
            statement = BACKFILL.format(table=table)
            params = {"day": day, "today": today, "rows": rows, "table": table}
            conn.execute(statement, params)  # type: ignore[arg-type]
    return day


def queue_rotation(env: dict[str, str]) -> None:
    """`eventgate tasks run rotate_partitions`: the worker drops the expired partitions."""
    command = [sys.executable, "-m", "cli", "tasks", "run", "rotate_partitions"]
    subprocess.run(command, env=env, cwd=ROOT, capture_output=True, check=True)


def storage(url: str) -> dict[str, tuple[int, int, int, str]]:
    """Per partitioned table: (partitions, bytes, dead tuples, oldest day)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(SIZES, {"tables": list(PARTITIONED_TABLES)}).fetchall()
        jobs_dead = conn.execute(
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'procrastinate_jobs'"
        ).fetchone()
    found = {name: (count, size, dead, oldest) for name, count, size, dead, oldest in rows}
    found["procrastinate_jobs"] = (1, 0, jobs_dead[0] if jobs_dead else 0, "")
    return found


def last_rotation(url: str) -> str:
    """What the newest finished rotation did and how long it took."""
    with psycopg.connect(url) as conn:
        row = conn.execute(LAST_ROTATION).fetchone()
    if row is None:
        return "none yet"
    result, took, outcome = row
    return f"{outcome}, dropped {(result or {}).get('dropped', 0)} in {took} ms"


class Load:
    """Open-loop single-event POSTs at a fixed rate until stopped; counts answers."""

    def __init__(self, base: str, key: str, rate: float) -> None:
        self.base, self.key, self.rate = base, key, rate
        self.accepted = self.refused = 0
        self.running = True

    async def run(self) -> None:
        """POST on schedule, whether or not earlier POSTs were answered."""
        headers = {"X-API-Key": self.key}
        connector = aiohttp.TCPConnector(limit=1000)
        async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
            tasks: set[asyncio.Task] = set()
            started, wall, n = time.monotonic(), time.time(), 0
            while self.running:
                await asyncio.sleep(max(0.0, started + n / self.rate - time.monotonic()))
                task = asyncio.create_task(self._one(session, n, wall + n / self.rate))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                n += 1
            await asyncio.gather(*tasks)

    async def _one(self, session: aiohttp.ClientSession, n: int, at: float) -> None:
        try:
            async with session.post(f"{self.base}/v1/events", json=body(n, at)) as answer:
                await answer.read()
                ok = answer.status == 201
        except aiohttp.ClientError:
            ok = False
        self.accepted += ok
        self.refused += not ok


def minute_line(
    minute: int, answered: tuple[int, int], seen: list[float], url: str
) -> tuple[float, int]:
    """Print one minute's figures (`answered`: accepted and refused POSTs); return its p99 (ms)
    and total bytes."""
    cuts = statistics.quantiles(seen, n=100) if len(seen) > 1 else [float("nan")] * 99
    sizes = storage(url)
    total = sum(size for _, size, _, _ in sizes.values())
    tables = "  ".join(
        f"{name} {count}p {size / 2**20:.0f} MB dead {dead}"
        for name, (count, size, dead, _) in sizes.items()
        if name != "procrastinate_jobs"
    )
    print(
        f"min {minute:2}  ingest {answered[0]:6} ok {answered[1]:4} refused  "
        f"delivered {len(seen):6}  p50 {cuts[49] * 1000:6.1f} ms  p99 {cuts[98] * 1000:7.1f} ms  "
        f"backlog {backlog(url):5}  jobs dead {sizes['procrastinate_jobs'][2]}"
        f"\n        {tables}  total {total / 2**20:.0f} MB"
        f"\n        oldest days {', '.join(f'{n} {v[3]}' for n, v in sizes.items() if v[3])}"
        f"; last rotation: {last_rotation(url)}",
        flush=True,
    )
    return cuts[98] * 1000, total


async def soak(url: str, args: argparse.Namespace, postgres_pid: int) -> None:
    key = make_key(url, "soak")
    with processes(url, argparse.Namespace(workers=1), postgres_pid, **RETENTION) as where:
        await wait_ready(where["api"], where["hook"])
        ceiling = await post_ceiling(where["hook"], 5.0)
        async with aiohttp.ClientSession(headers={"X-API-Key": key}) as session:
            hook = {"url": f"{where['hook']}/hook/0"}
            async with session.post(f"{where['api']}/v1/endpoints", json=hook) as answer:
                assert answer.status == 201, await answer.text()
        print(
            f"ceiling: plain aiohttp POSTs to the receiver {ceiling:.0f}/s; offered "
            f"{args.rate:.0f} events/s ({args.rate / ceiling:.2f} of it) for {args.minutes} min",
            flush=True,
        )
        load = Load(where["api"], key, args.rate)
        running = asyncio.create_task(load.run())
        p99s, totals, before = [], [], (0, 0)
        for minute in range(1, args.minutes + 1):
            await asyncio.sleep(60 - 5)
            await asyncio.to_thread(backfill_expired_day, url, args.history_rows)
            await asyncio.to_thread(queue_rotation, where["env"])
            await asyncio.sleep(5)
            seen = await arrivals(where["hook"], reset=True)
            now = (load.accepted, load.refused)
            answered = (now[0] - before[0], now[1] - before[1])
            p99, total = minute_line(minute, answered, seen, url)
            before = now
            p99s.append(p99)
            totals.append(total)
        load.running = False
        await running
        summarise(p99s, totals, url)


def summarise(p99s: list[float], totals: list[int], url: str) -> None:
    """Flat latency and bounded storage, in figures."""
    third = max(1, len(p99s) // 3)
    first, last = statistics.median(p99s[:third]), statistics.median(p99s[-third:])
    expired = (datetime.now(UTC).date() - timedelta(days=2)).strftime("%Y%m%d")
    left = {n: v[3] for n, v in storage(url).items() if v[3] and v[3] <= expired}
    print(
        f"p99 per minute: first third median {first:.1f} ms, last third {last:.1f} ms "
        f"(ratio {last / first:.2f}); max {max(p99s):.1f} ms"
        f"\nstorage: {totals[0] / 2**20:.0f} MB after minute 1, {totals[-1] / 2**20:.0f} MB at "
        f"the end; expired days still stored: {left or 'none'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=int, default=20)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--history-rows", type=int, default=20_000)
    args = parser.parse_args()
    use_bench_encryption_key()
    with migrated_postgres("eventgate-soak-") as (url, pid):
        asyncio.run(soak(url, args, pid))


if __name__ == "__main__":
    main()
