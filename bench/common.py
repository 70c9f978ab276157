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
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg

from db import events
from db.ids import new_id

ROOT = Path(__file__).parent.parent


# Stored secrets are sealed under this key in every bench run (a fresh database each time); the
# processes a bench starts (`eventgate dev`, `serve`, `worker`) inherit it.
BENCH_ENCRYPTION_KEY = "ZXZlbnRnYXRlLWJlbmNoLWtleS0wMTIzNDU2Nzg5YWI="


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def use_bench_encryption_key() -> None:
    """Put the bench's encryption key in this process's environment (unless one is set)."""
    os.environ.setdefault("EVENTGATE_ENCRYPTION_KEYS", BENCH_ENCRYPTION_KEY)


def start_dev(data_dir: str, **extra_env: str) -> tuple[subprocess.Popen, str, str, str]:
    """Run `eventgate dev` (with `extra_env`) and read its URL, key and database URL from its
    output."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Tunables pass through (EVENTGATE_DELIVERY_BATCH_SIZE=...); the database is dev's own.
    env = {k: v for k, v in os.environ.items() if k != "EVENTGATE_DATABASE_URL"}
    env.setdefault("EVENTGATE_LOG_FORMAT", "json")  # as in production (dev's default is console)
    env.update(extra_env)
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
def dev_or_given(args: argparse.Namespace, **extra_env: str) -> Iterator[tuple[str, str, str]]:
    """(API URL, key, database URL): the ones given with --url, or a fresh `eventgate dev`
    (with `extra_env`)."""
    if args.url:
        yield args.url, args.key, args.database_url
        return
    use_bench_encryption_key()
    with tempfile.TemporaryDirectory(prefix="eventgate-bench-") as data_dir:
        process, url, key, database_url = start_dev(data_dir, **extra_env)
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


@contextlib.contextmanager
def otlp_sink() -> Iterator[str]:
    """A loopback OTLP/HTTP endpoint that takes every export and drops it: tracing is measured
    with its exports going out, as they would to a collector. Yields its base URL."""

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


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
