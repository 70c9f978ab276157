"""Eventgate behind a real PgBouncer in transaction mode: the API and a worker use it for all
their statements (no prepared statement, no session state), and their LISTEN connections go
to EVENTGATE_DIRECT_DATABASE_URL; ingest, delivery and key revocation all work."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import httpx

from tests.cli.test_cli import eventgate
from tests.database_servers import running_pgbouncer, transactions_through
from tests.helpers import ROOT, api_process, auth, event_body, make_key, wait_for


async def test_ingest_delivery_and_revocation_work_through_pgbouncer_in_transaction_mode(
    worker_env, receiver, tmp_path
):
    direct = worker_env
    admin = await make_key(direct, rate_limit_tier="unlimited")
    doomed = await make_key(direct)
    # Few server connections for many clients: consecutive transactions of one client
    # connection land on different server connections, as in production.
    with running_pgbouncer(direct, pool_size=4) as pooled:
        env = {**os.environ, "EVENTGATE_DATABASE_URL": pooled}
        env["EVENTGATE_DIRECT_DATABASE_URL"] = direct
        with (tmp_path / "worker.log").open("ab") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "cli", "worker"], env=env, cwd=ROOT, stderr=log
            )
        try:
            with api_process(pooled, EVENTGATE_DIRECT_DATABASE_URL=direct) as base:
                async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                    carried = transactions_through(pooled)
                    await ingest_and_deliver(http, receiver, admin)
                    await wait_for(  # it all went through PgBouncer
                        lambda: transactions_through(pooled) - carried > 400, what="its stats"
                    )
                    await revoke_everywhere(http, doomed, env)
        finally:
            worker.terminate()
            worker.wait(timeout=30)


async def ingest_and_deliver(http: httpx.AsyncClient, receiver, key: str) -> None:
    created = await http.post(
        "/v1/endpoints", json={"url": receiver.endpoint_url("pooled")}, headers=auth(key)
    )
    assert created.status_code == 201, created.text
    receiver.secrets["pooled"] = [created.json()["secret"]]
    answers: list[httpx.Response] = []
    for _ in range(4):  # 50 at once, four times: the same statements over and over
        answers += await asyncio.gather(
            *(http.post("/v1/events", json=event_body(), headers=auth(key)) for _ in range(50))
        )
    assert [a.status_code for a in answers] == [201] * 200, {a.text for a in answers}
    reads = await asyncio.gather(*(http.get("/v1/inbox", headers=auth(key)) for _ in range(20)))
    assert {r.status_code for r in reads} == {200}
    await wait_for(lambda: len(receiver.at("pooled")) == 200, timeout=60, what="200 deliveries")
    assert all(r.verified for r in receiver.at("pooled"))


async def revoke_everywhere(http: httpx.AsyncClient, key: str, env: dict[str, str]) -> None:
    """The API process keeps the key cached; a revocation from another process reaches it
    by NOTIFY on its direct LISTEN connection, long before the cache would expire."""
    assert (await http.get("/v1/inbox", headers=auth(key))).status_code == 200
    listed = eventgate("keys", "list", "--tenant", "acme", env=env)
    [key_id] = [line.split()[0] for line in listed.stdout.splitlines() if key.split("_")[1] in line]
    revoked = eventgate("keys", "revoke", "--tenant", "acme", key_id, env=env)
    assert revoked.returncode == 0, revoked.stderr
    started = time.monotonic()

    async def refused() -> bool:
        return (await http.get("/v1/inbox", headers=auth(key))).status_code == 401

    await wait_for(refused, timeout=5, what="the revoked key refused")
    assert time.monotonic() - started < 5
