"""What tests share: keys and bodies, a real webhook receiver on loopback, a real in-process
procrastinate worker, ingest and endpoint helpers, and waiting for a condition."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.keys import services as keys
from app.scopes import ALL_SCOPES
from db import events, tenants
from db.ids import new_id
from tests.servers import http_status
from workers.app import app as worker_app
from workers.destinations import close_destinations

# The project's top folder (commands run as subprocesses start there).
ROOT = Path(__file__).parent.parent
# The key stored secrets are encrypted under in tests (base64 of 32 fixed bytes); conftest
# puts it in the environment, so every process a test starts has it too.
TEST_ENCRYPTION_KEY = "ZXZlbnRnYXRlLXRlc3Qta2V5LTAxMjM0NTY3ODlhYmM="

# Small numbers so retries, leases and circuits play out within a test.
WORKER_ENV = {
    "EVENTGATE_ALLOW_PRIVATE_DESTINATIONS": "true",
    "EVENTGATE_DELIVERY_RETRY_SCHEDULE": "0,0.2,0.2",
    "EVENTGATE_DELIVERY_CONNECT_TIMEOUT_SECONDS": "1",
    "EVENTGATE_DELIVERY_TIMEOUT_SECONDS": "2",
    "EVENTGATE_DELIVERY_LEASE_SECONDS": "4",
    "EVENTGATE_CIRCUIT_COOLDOWN_SECONDS": "1",
}


class Received(msgspec.Struct):
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    raw: bytes
    body: dict[str, Any]
    verified: bool
    at: float
    wall: float
    method: str = "POST"
    query: str = ""


class Receiver:
    """Answers webhook POSTs by a per-path script of status codes (200 once it runs out) and
    verifies each signature with the standardwebhooks reference implementation."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.secrets: dict[str, list[str]] = {}
        self.scripts: dict[str, list[int | tuple[int, dict[str, str]]]] = defaultdict(list)
        self.delay = 0.0
        self.in_flight = 0
        self.in_flight_at: dict[str, int] = defaultdict(int)
        self.max_in_flight: dict[str, int] = defaultdict(int)
        self.url = ""
        self.arrived = asyncio.Event()
        # Per path: whether an Authorization header (None when absent) is let in; 401 if not.
        self.admits: dict[str, Callable[[str | None], bool]] = {}

    def endpoint_url(self, path: str) -> str:
        """The URL of one path on this receiver."""
        return f"{self.url}/{path}"

    async def handle(self, request: web.Request) -> web.Response:
        """Record, verify and answer one request."""
        path = request.match_info["path"]
        self.in_flight += 1
        self.in_flight_at[path] += 1
        self.max_in_flight[path] = max(self.max_in_flight[path], self.in_flight_at[path])
        try:
            raw = await request.read()
            if self.delay:
                await asyncio.sleep(self.delay)
            headers = {k.lower(): v for k, v in request.headers.items()}
            self.received.append(
                Received(
                    path,
                    headers,
                    raw,
                    msgspec.json.decode(raw),
                    self.verify(path, raw, headers),
                    time.monotonic(),
                    time.time(),
                    request.method,
                    request.query_string,
                )
            )
            self.arrived.set()
            admits = self.admits.get(path)
            if admits is not None and not admits(headers.get("authorization")):
                return web.Response(status=401, text="who are you?")
            script = self.scripts[path]
            answer = script.pop(0) if script else 200
            status, extra = answer if isinstance(answer, tuple) else (answer, {})
            return web.Response(status=status, text=f"answer {status}", headers=extra)
        finally:
            self.in_flight -= 1
            self.in_flight_at[path] -= 1

    def verify(self, path: str, raw: bytes, headers: dict[str, str]) -> bool:
        """True when any secret known for the path verifies the request."""
        for secret in self.secrets.get(path, []):
            try:
                Webhook(secret).verify(raw, headers)
                return True
            except WebhookVerificationError:
                continue
        return False

    def at(self, path: str) -> list[Received]:
        """What arrived at one path, in order."""
        return [r for r in self.received if r.path == path]


@contextlib.asynccontextmanager
async def running_receiver(ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[Receiver]:
    """Serve a Receiver on a free loopback port (over TLS with `ssl_context`)."""
    receiver = Receiver()
    web_app = web.Application()
    for method in ("POST", "PUT", "PATCH"):  # a transformation may choose PUT or PATCH
        web_app.router.add_route(method, "/{path}", receiver.handle)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = runner.addresses[0][1]
    receiver.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def running_worker(
    queues: list[str] | None = None, concurrency: int = 4
) -> AsyncIterator[None]:
    """A real procrastinate worker in this event loop, stopped gracefully at the end."""
    async with worker_app.open_async():
        task = asyncio.create_task(
            worker_app.run_worker_async(
                install_signal_handlers=False, queues=queues, concurrency=concurrency, wait=True
            )
        )
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await close_destinations()


async def early_in_a_minute(room: float = 20.0) -> None:
    """Wait, if need be, until a rate limit's minute window (epoch-aligned) has `room` seconds
    left: a test counting requests against one window must not straddle two."""
    left = 60 - time.time() % 60
    if left < room:
        await asyncio.sleep(left + 0.1)


async def wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "") -> None:
    """Poll an (async or plain) condition until it is true."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.05)


async def make_key(
    database_url: str, tenant: str = "acme", scopes: list[str] | tuple[str, ...] = ALL_SCOPES, **kw
) -> str:
    """Create (or reuse) a tenant and give it a new key with these scopes."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        row, _ = await tenants.create_or_get(conn, tenant)
        created = await keys.issue(conn, tenant_id=row.id, name="test", scopes=list(scopes), **kw)
    return created.key


def auth(key: str) -> dict[str, str]:
    """Headers that present `key`."""
    return {"X-API-Key": key}


def event_body(**overrides: object) -> dict[str, object]:
    """A valid event body."""
    body: dict[str, object] = {
        "source": "billing",
        "event_type": "invoice.paid",
        "payload": {"n": 1},
    }
    body.update(overrides)
    return body


async def add_endpoint(client: Any, key: str, receiver: Receiver, path: str, **fields: Any) -> dict:
    """Create an endpoint that points at one path of the receiver, which learns its secret."""
    response = await client.post(
        "/v1/endpoints",
        json={"url": receiver.endpoint_url(path), **fields},
        headers=auth(key),
    )
    assert response.status_code == 201, response.text
    created = response.json()
    receiver.secrets[path] = [created["secret"]]
    return created["endpoint"]


async def ingest(client: Any, key: str, count: int, **metadata: Any) -> list[str]:
    """Ingest `count` events in one batch; returns their ids."""
    events = [event_body(payload={"n": n}, metadata=metadata or None) for n in range(count)]
    response = await client.post("/v1/events/batch", json={"events": events}, headers=auth(key))
    assert response.status_code == 201, response.text
    return [e["event_id"] for e in response.json()["events"]]


def statuses(url: str) -> dict[str, int]:
    """How many deliveries are in each status."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT status, count(*) FROM deliveries GROUP BY status").fetchall()
    return dict(rows)


def attempts_recorded(url: str) -> int:
    """How many delivery attempts are stored."""
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM delivery_attempts").fetchone()[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve_process(
    database_url: str, port: int | None = None, workers: int = 1, **extra_env: str
) -> Iterator[tuple[subprocess.Popen, str]]:
    """An `eventgate serve` process on the same database (on `port`, or a free one), ready:
    yields it (a test may kill it) and its base URL."""
    port = port or free_port()
    env = {**os.environ, "EVENTGATE_DATABASE_URL": database_url, **extra_env}
    command = [sys.executable, "-m", "cli", "serve", "--port", str(port), "--workers", str(workers)]
    process = subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            assert process.poll() is None, "the API process exited"
            if http_status(f"{base}/health/ready") == 200:
                break
            time.sleep(0.1)
        yield process, base
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)


@contextlib.contextmanager
def api_process(database_url: str, workers: int = 1, **extra_env: str) -> Iterator[str]:
    """An `eventgate serve` process of its own on the same database; yields its base URL."""
    with serve_process(database_url, None, workers, **extra_env) as (_, base):
        yield base


def event_row(tenant_id: uuid.UUID) -> events.NewEvent:
    """A minimal normal-priority event of the tenant, as ingest would store it."""
    return events.NewEvent(
        id=new_id(),
        tenant_id=tenant_id,
        source="s",
        event_type="t",
        payload={},
        metadata={},
        idempotency_key=None,
        correlation_id=None,
        priority="normal",
    )
