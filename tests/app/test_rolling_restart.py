"""A rolling restart behind a real HAProxy (health-checked on /health/ready): two
`eventgate serve` processes are stopped with SIGTERM and started again one after the other
under steady ingest, and a worker is restarted meanwhile; no request fails and every event
answered 201 is delivered."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import httpx
import pytest

from tests.brokers import free_port
from tests.database_servers import running_haproxy
from tests.helpers import ROOT, auth, event_body, make_key, serve_process, wait_for

pytestmark = pytest.mark.timeout(300)
# Longer than the balancer needs to see /health/ready fail (checks every 200 ms).
DRAIN = {"EVENTGATE_SHUTDOWN_DRAIN_SECONDS": "1"}


class Load:
    """Clients POSTing events through the balancer; every status kept."""

    def __init__(self, http: httpx.AsyncClient, key: str) -> None:
        self.http, self.key = http, key
        self.statuses: Counter[int] = Counter()
        self.acked: list[str] = []
        self.refusals: list[str] = []  # what any answer other than 201 said
        self.stopping = asyncio.Event()

    async def client(self) -> None:
        while not self.stopping.is_set():
            try:
                answer = await self.http.post(
                    "/v1/events", json=event_body(), headers=auth(self.key)
                )
            except httpx.TransportError as exc:
                self.statuses[0] += 1
                self.refusals.append(repr(exc))
                continue
            self.statuses[answer.status_code] += 1
            if answer.status_code == 201:
                self.acked.append(answer.json()["event_id"])
            else:
                self.refusals.append(f"{time.monotonic():.1f} {answer.status_code} {answer.text}")
            await asyncio.sleep(0.01)


async def restarted(
    stack: contextlib.ExitStack, database_url: str, port: int, process: subprocess.Popen
) -> subprocess.Popen:
    """SIGTERM an API process, wait for it to finish, start it again on its port (kept
    running until `stack` closes)."""
    process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(process.wait, 30)
    starting = serve_process(database_url, port, **DRAIN)
    new, _ = await asyncio.to_thread(stack.enter_context, starting)
    return new


def worker_process(env: dict[str, str], log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli", "worker"], env=env, cwd=ROOT, stderr=log)


async def test_restarting_each_api_process_and_the_worker_under_load_fails_nothing(
    worker_env, receiver, tmp_path
):
    database_url = worker_env
    key = await make_key(database_url, rate_limit_tier="unlimited")
    ports = [free_port(), free_port()]
    stack = contextlib.ExitStack()
    processes = [
        stack.enter_context(serve_process(database_url, port, **DRAIN))[0] for port in ports
    ]
    log = stack.enter_context((tmp_path / "worker.log").open("ab"))
    worker = worker_process(dict(os.environ), log)
    try:
        with running_haproxy(ports) as balancer:
            async with httpx.AsyncClient(base_url=balancer, timeout=30) as http:
                await wait_for(
                    lambda: http.get("/health/ready"), timeout=10, what="the balancer ready"
                )
                created = await http.post(
                    "/v1/endpoints", json={"url": receiver.endpoint_url("r")}, headers=auth(key)
                )
                assert created.status_code == 201, created.text
                load = Load(http, key)
                clients = [asyncio.create_task(load.client()) for _ in range(4)]
                await asyncio.sleep(2)
                for n, port in enumerate(ports):
                    processes[n] = await restarted(stack, database_url, port, processes[n])
                    await asyncio.sleep(1.5)  # the balancer's check sees it up again
                worker.send_signal(signal.SIGTERM)
                await asyncio.to_thread(worker.wait, 60)
                worker = worker_process(dict(os.environ), log)
                await asyncio.sleep(2)
                load.stopping.set()
                await asyncio.gather(*clients)
        assert load.statuses == Counter({201: len(load.acked)}), (load.statuses, load.refusals[:5])
        assert len(load.acked) > 100

        def delivered() -> bool:
            return set(load.acked) <= {r.body["id"] for r in receiver.at("r")}

        await wait_for(delivered, timeout=60, what="every acknowledged event delivered")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        stack.close()


async def test_a_stopping_server_says_it_is_not_ready_and_serves_until_the_drain_ends(
    worker_env,
):
    key = await make_key(worker_env)
    with serve_process(worker_env, None, EVENTGATE_SHUTDOWN_DRAIN_SECONDS="3") as (process, base):
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.get("/health/ready")).status_code == 200
            process.send_signal(signal.SIGTERM)

            async def draining() -> bool:
                answer = await http.get("/health/ready")
                return answer.status_code == 503 and answer.json()["status"] == "draining"

            await wait_for(draining, timeout=2, what="readiness 503 while draining")
            ingested = await http.post("/v1/events", json=event_body(), headers=auth(key))
            assert ingested.status_code == 201  # still serving
        await asyncio.to_thread(process.wait, 15)
