"""What announcing due work costs committing writers: 32 connections commit a one-row INSERT
each as fast as they can (synchronous commit), with no NOTIFY (the ceiling), with the NOTIFY in
the same statement (sent at its COMMIT), and with the NOTIFY sent by itself after the COMMIT,
as single-event ingest does. A LISTEN connection drains the channel throughout.

    uv run python bench/announce.py [--connections 32] [--seconds 3] [--rounds 3]

A NOTIFY takes the notification queue's lock at COMMIT and keeps it until the commit is
flushed, so writers that notify in their transaction flush one after another; a NOTIFY sent
by itself writes nothing to flush and holds the lock for moments.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench.sustained import migrated_postgres

TABLE = "CREATE TABLE announced (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, x int)"
INSERT = "INSERT INTO announced (x) VALUES (1)"
NOTIFY = "SELECT pg_notify('eventgate_bench', 'default')"
VARIANTS: dict[str, list[str]] = {
    "no NOTIFY (the ceiling)": [INSERT],
    "NOTIFY in the statement, sent at COMMIT": [
        "WITH i AS (INSERT INTO announced (x) VALUES (1)) " + NOTIFY
    ],
    "NOTIFY by itself after COMMIT": [INSERT, NOTIFY],
}


async def commits_per_second(
    conns: list[psycopg.AsyncConnection], statements: list[str], seconds: float
) -> float:
    """Commits/s of the connections each running `statements` (autocommit) in a loop."""
    done = 0
    deadline = time.monotonic() + seconds

    async def writer(conn: psycopg.AsyncConnection) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            for statement in statements:
                await conn.execute(statement)  # type: ignore[arg-type]
            done += 1

    started = time.monotonic()
    await asyncio.gather(*(writer(conn) for conn in conns))
    return done / (time.monotonic() - started)


async def run(url: str, args: argparse.Namespace) -> None:
    connect = psycopg.AsyncConnection.connect
    async with await connect(url, autocommit=True) as listener:
        await listener.execute(TABLE)
        await listener.execute("LISTEN eventgate_bench")
        drained = asyncio.create_task(_drain(listener))
        conns = [await connect(url, autocommit=True) for _ in range(args.connections)]
        rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for _ in range(args.rounds):  # in turns: this machine's speed drifts
            for name, statements in VARIANTS.items():
                rates[name].append(await commits_per_second(conns, statements, args.seconds))
        drained.cancel()
        for conn in conns:
            await conn.close()
    ceiling = statistics.median(rates["no NOTIFY (the ceiling)"])
    print(f"{args.connections} connections, {args.rounds} rounds of {args.seconds:g} s, medians")
    for name, found in rates.items():
        median = statistics.median(found)
        print(f"  {name:42} {median:7.0f} commits/s  ratio {median / ceiling:.2f}")


async def _drain(listener: psycopg.AsyncConnection) -> None:
    async for _ in listener.notifies():
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with migrated_postgres("eventgate-announce-") as (url, _):
        asyncio.run(run(url, args))


if __name__ == "__main__":
    main()
