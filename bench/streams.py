"""Idle event streams held by one `eventgate serve` process, and what they cost.

    uv run python bench/streams.py [--streams 1000,4000] [--seconds 20]

For each count it opens that many GET /v1/events/stream connections of one tenant (plain
sockets; each reads its answer), then prints: the server's resident memory and CPU while they
sit idle (heartbeats included), how long one ingested event takes to reach every stream, and
the page reads one wake-up cost (single-flight: streams woken by the same commit at
the same position share one read). The process with no stream open, in the same run, is the
ceiling each figure is set against.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench.common import make_key, use_bench_encryption_key
from bench.ingest import serve
from db import migrate
from db.embedded import EmbeddedPostgres

HEARTBEAT = "5"


class Reader:
    """One raw stream: counts the events that arrive on it."""

    def __init__(self) -> None:
        self.events = 0
        self.failed: str | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def run(self, port: int, key: str, opened: asyncio.Event) -> None:
        try:
            await self._follow(port, key, opened)
        except (OSError, asyncio.IncompleteReadError) as exc:
            self.failed = f"{exc.__class__.__name__}: {exc}"
            opened.set()

    async def _follow(self, port: int, key: str, opened: asyncio.Event) -> None:
        reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        request = f"GET /v1/events/stream HTTP/1.1\r\nHost: b\r\nX-API-Key: {key}\r\n\r\n"
        self.writer.write(request.encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise OSError(head.split(b"\r\n")[0].decode())
        await reader.readuntil(b"stream open")
        opened.set()
        while line := await reader.readline():
            if line.startswith(b"data: "):
                self.events += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


READS = re.compile(r"^eventgate_event_stream_reads_total (\S+)$", re.M)


async def reads(http: aiohttp.ClientSession, base: str) -> int:
    """Pages the server has read for its streams so far (its own counter)."""
    async with http.get(f"{base}/metrics") as answer:
        found = READS.search(await answer.text())
    return int(float(found.group(1))) if found else 0


def usage(process: psutil.Process, seconds: float) -> tuple[float, float]:
    """Resident MiB and CPU % (of one core) over `seconds`."""
    before = process.cpu_times()
    time.sleep(seconds)
    after = process.cpu_times()
    busy = (after.user - before.user) + (after.system - before.system)
    return process.memory_info().rss / 2**20, 100 * busy / seconds


async def measure(base: str, key: str, url: str, count: int, seconds: float, pid: int) -> None:
    port = int(base.rsplit(":", 1)[1])
    server = psutil.Process(pid)
    readers = [Reader() for _ in range(count)]
    opened = [asyncio.Event() for _ in range(count)]
    started = time.monotonic()
    tasks = [asyncio.create_task(r.run(port, key, o)) for r, o in zip(readers, opened, strict=True)]
    for chunk in range(0, count, 200):
        await asyncio.gather(*(o.wait() for o in opened[chunk : chunk + 200]))
    opening = time.monotonic() - started
    failed = [r.failed for r in readers if r.failed]
    if failed:
        print(f"{count:>6} streams: {len(failed)} could not open, e.g. {failed[0]}", flush=True)
        readers = [r for r in readers if not r.failed]
    rss, cpu = await asyncio.to_thread(usage, server, seconds)
    reaches, costs = [], []
    async with aiohttp.ClientSession(headers={"X-API-Key": key}) as http:
        for n in (1, 2):  # the first finds streams at many start positions; then one
            before = await reads(http, base)
            sent = time.monotonic()
            event = {"source": "b", "event_type": "t", "payload": {}}
            async with http.post(f"{base}/v1/events", json=event) as answer:
                assert answer.status == 201
            while min(r.events for r in readers) < n:
                await asyncio.sleep(0.005)
            reaches.append(time.monotonic() - sent)
            await asyncio.sleep(0.5)
            costs.append(await reads(http, base) - before)
        quiet = await reads(http, base)
        await asyncio.sleep(float(HEARTBEAT))  # every stream's heartbeat falls in it
        quiet = await reads(http, base) - quiet
    print(
        f"{count:>6} streams: opened in {opening:.1f} s; idle {rss:.0f} MiB, CPU {cpu:.1f} %;"
        f" an event reached all in {reaches[0] * 1000:.0f} / {reaches[1] * 1000:.0f} ms"
        f" (first / second), costing {costs[0]} / {costs[1]} reads"
        f" ({quiet} in a quiet heartbeat period)",
        flush=True,
    )
    for reader in readers:
        reader.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def run(url: str, args: argparse.Namespace) -> None:
    key = make_key(url, "streams")
    env = {
        "EVENTGATE_STREAM_MAX_PER_KEY": str(sum(args.streams) + 10),
        "EVENTGATE_STREAM_HEARTBEAT_SECONDS": HEARTBEAT,
        "EVENTGATE_POOL_MAX_SIZE": "20",
    }
    with serve(url, **env) as base:
        await asyncio.sleep(2)
        pid = next(
            p.pid
            for p in psutil.Process().children(recursive=True)
            if "serve" in " ".join(p.cmdline())
        )
        rss, cpu = await asyncio.to_thread(usage, psutil.Process(pid), args.seconds)
        print(f"     0 streams (ceiling): idle {rss:.0f} MiB, CPU {cpu:.1f} %", flush=True)
        for count in args.streams:
            await measure(base, key, url, count, args.seconds, pid)
            await asyncio.sleep(2)  # closed streams are forgotten


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--streams", type=lambda s: [int(n) for n in s.split(",")], default=[1000, 4000]
    )
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the server inherits it too
    print(f"heartbeat every {HEARTBEAT} s; file descriptors: {hard}")
    use_bench_encryption_key()
    with tempfile.TemporaryDirectory(prefix="eventgate-streams-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pg")
        url = server.start()
        try:
            migrate.apply(url)
            asyncio.run(run(url, args))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
