"""A real Patroni cluster (two Postgres nodes, a synchronous standby, etcd) under steady ingest
and delivery, Eventgate given one multi-host URL: when the primary's postmaster is killed,
Patroni promotes the standby, nothing answered 201 is lost or left undelivered, the gap is
answered 503 with Retry-After (never 500), and the API, the worker, the key-revocation
listener and the request-log writer reconnect by themselves. A planned switchover likewise.
Heavy reads go to the synchronous standby given as EVENTGATE_READ_DATABASE_URL, and to the
primary while it lags."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import httpx
import msgspec
import psycopg
import pytest

from tests.cli.test_cli import eventgate
from tests.database_servers import PASSWORD, Cluster, running_cluster
from tests.helpers import ROOT, WORKER_ENV, api_process, auth, event_body, make_key, wait_for

pytestmark = pytest.mark.timeout(600)
REPORT = ROOT / "test-output" / "cluster.txt"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster() as running:
        yield running


def report(line: str) -> None:
    """Keep a measured figure where a person reads it: test-output/cluster.txt."""
    REPORT.parent.mkdir(exist_ok=True)
    with REPORT.open("a") as out:
        out.write(line + "\n")


class Answer(msgspec.Struct):
    at: float
    status: int  # 0: no HTTP answer at all
    event_id: str | None
    retry_after: str | None
    request_id: str | None


class Load:
    """Clients POSTing events without pause, every answer kept."""

    def __init__(self, http: httpx.AsyncClient, key: str) -> None:
        self.http, self.key = http, key
        self.answers: list[Answer] = []
        self.stopping = asyncio.Event()

    async def client(self) -> None:
        while not self.stopping.is_set():
            try:
                r = await self.http.post("/v1/events", json=event_body(), headers=auth(self.key))
                event_id = r.json().get("event_id") if r.status_code == 201 else None
                answer = Answer(
                    time.monotonic(),
                    r.status_code,
                    event_id,
                    r.headers.get("retry-after"),
                    r.headers.get("x-request-id"),
                )
            except httpx.TransportError:
                answer = Answer(time.monotonic(), 0, None, None, None)
            self.answers.append(answer)
            await asyncio.sleep(0.02)

    def acked(self) -> list[str]:
        return [a.event_id for a in self.answers if a.event_id]


class Stack(msgspec.Struct):
    http: httpx.AsyncClient
    key: str
    env: dict[str, str]


@pytest.fixture
async def stack(cluster: Cluster, receiver, tmp_path) -> AsyncIterator[Stack]:
    """`eventgate serve` and `eventgate worker` on the cluster's one URL, an endpoint."""
    key = await make_key(cluster.url, tenant=f"t{time.monotonic_ns()}", rate_limit_tier="unlimited")
    env = {**os.environ, **WORKER_ENV, "EVENTGATE_DATABASE_URL": cluster.url}
    with (tmp_path / "worker.log").open("ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "cli", "worker"], env=env, cwd=ROOT, stderr=log
        )
    try:
        with api_process(cluster.url, **WORKER_ENV) as base:
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                created = await http.post(
                    "/v1/endpoints", json={"url": receiver.endpoint_url("ha")}, headers=auth(key)
                )
                assert created.status_code == 201, created.text
                yield Stack(http, key, env)
    finally:
        worker.terminate()
        worker.wait(timeout=30)


async def under_load(stack: Stack, disrupt, clients: int = 4) -> tuple[Load, float]:
    """Run the load, disrupt the cluster after 3 s, go on until 5 s of 201s after it."""
    load = Load(stack.http, stack.key)
    tasks = [asyncio.create_task(load.client()) for _ in range(clients)]
    await asyncio.sleep(3)
    disrupted = time.monotonic()
    await asyncio.to_thread(disrupt)

    def recovered() -> bool:
        return any(a.status == 201 and a.at > disrupted + 5 for a in load.answers)

    try:
        await wait_for(recovered, timeout=120, what="201s again after the disruption")
    finally:
        load.stopping.set()
        await asyncio.gather(*tasks)
    return load, disrupted


def gap(load: Load, since: float) -> tuple[float, int]:
    """Seconds from the disruption to the first 201 after the last failed answer, and how
    many answers were not 201."""
    failed = [a for a in load.answers if a.status != 201 and a.at >= since]
    last_failed = max((a.at for a in failed), default=since)
    back = min(a.at for a in load.answers if a.status == 201 and a.at >= last_failed)
    return back - since, len(failed)


async def nothing_lost(cluster: Cluster, receiver, load: Load) -> Counter:
    """Every acknowledged event is stored on the primary and delivered (at least once)."""
    acked = load.acked()
    with psycopg.connect(cluster.url) as conn:
        stored = conn.execute("SELECT count(*) FROM events WHERE id = ANY(%s)", (acked,))
        assert stored.fetchone() == (len(acked),)

    def delivered() -> bool:
        return set(acked) <= {r.body["id"] for r in receiver.at("ha")}

    await wait_for(delivered, timeout=120, what="every acknowledged event delivered")
    return Counter(r.body["id"] for r in receiver.at("ha"))


def check_answers(load: Load) -> Counter:
    """201 or 503 with Retry-After, nothing else."""
    statuses = Counter(a.status for a in load.answers)
    assert set(statuses) <= {201, 503}, statuses
    assert all(a.retry_after for a in load.answers if a.status == 503)
    return statuses


async def test_listings_read_from_the_replica_and_the_primary_while_it_lags(
    cluster: Cluster, receiver
):
    standby = next(n for n in cluster.nodes if n.role() == "sync")
    standby_url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{standby.port}/eventgate"
    key = await make_key(cluster.url, tenant="reads", rate_limit_tier="unlimited")
    reads = {"EVENTGATE_READ_DATABASE_URL": standby_url, "EVENTGATE_READ_MAX_LAG_SECONDS": "1"}
    with api_process(cluster.url, **reads) as base:
        async with httpx.AsyncClient(base_url=base, headers=auth(key), timeout=30) as http:
            first = (await http.post("/v1/events", json=event_body())).json()["event_id"]

            async def listed(event_id: str) -> bool:
                page = (await http.get("/v1/inbox", params={"limit": 100})).json()
                return event_id in [e["id"] for e in page["events"]]

            await wait_for(lambda: listed(first), what="the event in the inbox")
            # The inbox pages come from the standby: its own transaction count rises by them.
            before = standby_transactions(standby_url)
            for _ in range(20):
                assert (await http.get("/v1/inbox")).status_code == 200
            await wait_for(
                lambda: standby_transactions(standby_url) - before >= 20, what="standby reads"
            )

            with psycopg.connect(standby_url, autocommit=True) as standby_conn:
                standby_conn.execute("SELECT pg_wal_replay_pause()")
                try:
                    late = (await http.post("/v1/events", json=event_body())).json()["event_id"]
                    # A GET of what was just written reads the primary, paused replay or not.
                    assert (await http.get(f"/v1/events/{late}")).status_code == 200
                    # The replica now lags: within its check and the lag bound, listings read
                    # the primary and show the new event.
                    await wait_for(lambda: listed(late), timeout=10, what="the primary read")
                finally:
                    standby_conn.execute("SELECT pg_wal_replay_resume()")
    report(f"reads: inbox from the standby {standby.name}; bypassed while its replay was paused")


def standby_transactions(standby_url: str) -> int:
    """The transactions the standby has run in Eventgate's database (its own statistics)."""
    with psycopg.connect(standby_url) as conn:
        row = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'eventgate'"
        ).fetchone()
    return int(row[0]) if row else 0


async def test_a_killed_primary_fails_over_and_nothing_acknowledged_is_lost(
    cluster: Cluster, stack: Stack, receiver
):
    old = cluster.primary()
    assert old is not None
    cached = await make_key(cluster.url, tenant="revoked-after-failover")
    assert (await stack.http.get("/v1/inbox", headers=auth(cached))).status_code == 200

    load, killed = await under_load(stack, lambda: os.kill(old.postmaster_pid(), signal.SIGKILL))
    new = cluster.primary()
    assert new is not None
    assert new.name != old.name  # Patroni promoted the standby
    statuses = check_answers(load)
    seconds, failed = gap(load, killed)
    copies = await nothing_lost(cluster, receiver, load)
    duplicates = sum(copies.values()) - len(copies)

    # The request-log writer came back: requests answered after the failover are logged.
    after = [a.request_id for a in load.answers if a.status == 201 and a.at > killed + seconds]

    def logged() -> bool:
        with psycopg.connect(cluster.url) as conn:
            found = conn.execute(
                "SELECT count(*) FROM request_logs WHERE request_id = ANY(%s)", (after,)
            ).fetchone()
        return found == (len(after),)

    await wait_for(logged, timeout=30, what="post-failover requests in request_logs")

    # The revocation listener came back: a cached key revoked elsewhere is refused at once.
    revoked_in = await revoke_and_wait(stack, cached, "revoked-after-failover")
    report(
        f"failover {old.name} -> {new.name}: {statuses[201]} acknowledged, {failed} answered"
        f" 503 (Retry-After), first 201 after {seconds:.1f} s; all stored and delivered,"
        f" {duplicates} duplicate deliveries; a revocation took {revoked_in:.2f} s"
    )


async def revoke_and_wait(stack: Stack, key: str, tenant: str) -> float:
    listed = eventgate("keys", "list", "--tenant", tenant, env=stack.env)
    [key_id] = [line.split()[0] for line in listed.stdout.splitlines() if key.split("_")[1] in line]
    revoked = eventgate("keys", "revoke", "--tenant", tenant, key_id, env=stack.env)
    assert revoked.returncode == 0, revoked.stderr
    started = time.monotonic()

    async def refused() -> bool:
        return (await stack.http.get("/v1/inbox", headers=auth(key))).status_code == 401

    await wait_for(refused, timeout=5, what="the revoked key refused")
    return time.monotonic() - started


async def test_a_planned_switchover_fails_nothing_beyond_its_503_window(
    cluster: Cluster, stack: Stack, receiver
):
    await wait_for(lambda: {n.role() for n in cluster.nodes} == {"primary", "sync"}, timeout=120)
    old = cluster.primary()
    assert old is not None
    [candidate] = [n for n in cluster.nodes if n is not old]

    def switch() -> None:
        done = cluster.patronictl(
            "switchover", "--leader", old.name, "--candidate", candidate.name, "--force"
        )
        assert done.returncode == 0, done.stdout + done.stderr

    load, switched = await under_load(stack, switch)
    assert (now := cluster.primary()) is not None
    assert now.name == candidate.name
    statuses = check_answers(load)
    seconds, failed = gap(load, switched)
    copies = await nothing_lost(cluster, receiver, load)
    report(
        f"switchover {old.name} -> {candidate.name}: {statuses[201]} acknowledged, {failed}"
        f" answered 503, first 201 after {seconds:.1f} s; all delivered,"
        f" {sum(copies.values()) - len(copies)} duplicates"
    )
