"""What the benchmarks share: starting `eventgate dev` and finding the key's tenant."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg

from db import events
from db.ids import new_id

ROOT = Path(__file__).parent.parent


# Stored secrets are sealed under this key in every bench run (a fresh database each time); the
# processes a bench starts (`eventgate dev`, `serve`, `worker`) inherit it.
BENCH_ENCRYPTION_KEY = "ZXZlbnRnYXRlLWJlbmNoLWtleS0wMTIzNDU2Nzg5YWI="


def use_bench_encryption_key() -> None:
    """Put the bench's encryption key in this process's environment (unless one is set)."""
    os.environ.setdefault("EVENTGATE_ENCRYPTION_KEYS", BENCH_ENCRYPTION_KEY)


def start_dev(data_dir: str) -> tuple[subprocess.Popen, str, str, str]:
    """Run `eventgate dev` and read its URL, key and database URL from its output."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Tunables pass through (EVENTGATE_DELIVERY_BATCH_SIZE=...); the database is dev's own.
    env = {k: v for k, v in os.environ.items() if k != "EVENTGATE_DATABASE_URL"}
    env.setdefault("EVENTGATE_LOG_FORMAT", "json")  # as in production (dev's default is console)
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "dev", "--port", str(port), "--data-dir", data_dir],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    key = database_url = ""
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("EVENTGATE_API_KEY="):
            key = line.strip().split("=", 1)[1]
        elif line.startswith("Database: "):
            database_url = line.strip().split(" ", 1)[1]
        elif line.startswith("Eventgate API:"):
            break
    process.stdout.close()
    time.sleep(2)
    return process, f"http://127.0.0.1:{port}", key, database_url


def tenant_of(database_url: str, key: str) -> uuid.UUID:
    prefix = key.split("_")[1]
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT tenant_id FROM api_keys WHERE prefix = %s", (prefix,)).fetchone()
    assert row is not None
    return row[0]


@contextlib.contextmanager
def dev_or_given(args: argparse.Namespace) -> Iterator[tuple[str, str, str]]:
    """(API URL, key, database URL): the ones given with --url, or a fresh `eventgate dev`."""
    if args.url:
        yield args.url, args.key, args.database_url
        return
    use_bench_encryption_key()
    with tempfile.TemporaryDirectory(prefix="eventgate-bench-") as data_dir:
        process, url, key, database_url = start_dev(data_dir)
        try:
            yield url, key, database_url
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


def event_row(tenant_id: uuid.UUID, body: dict) -> events.NewEvent:
    """The row POST /v1/events stores for `body` (normal priority, no idempotency key)."""
    return events.NewEvent(
        id=new_id(),
        tenant_id=tenant_id,
        source=body["source"],
        event_type=body["event_type"],
        payload=body["payload"],
        metadata={"priority": "normal"},
        idempotency_key=None,
        correlation_id=None,
        priority="normal",
    )
