"""What a million scheduled deliveries cost the claim of due work: the delivery engine's claim
statement (db/delivery_queue.py:CANDIDATES, run and rolled back) with 1,000 deliveries due,
before and after 1M deliveries scheduled over the next 30 days are added. Printed next to a
plain `SELECT 1` round trip measured in the same run. Called by bench/scale.py."""

from __future__ import annotations

import contextlib
import statistics
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg

from db import migrate
from db.delivery_queue import CANDIDATES
from db.endpoint_secrets import seal_secret

# Events of one tenant and one delivery each to one endpoint, due now or scheduled within
# 30 days (deliver_at), created today.
FILL = """
WITH ev AS (
    INSERT INTO events (id, tenant_id, source, event_type, payload, deliver_at, created_at)
    SELECT eventgate_uuidv7(now()), %(tenant_id)s, 'scale', 'scale.later', '{}',
           CASE WHEN %(scheduled)s THEN now() + (i %% 43200 + 1) * interval '1 minute' END,
           now()
    FROM generate_series(1, %(count)s) AS i
    RETURNING id, deliver_at, created_at
)
INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, queue, next_attempt_at,
                        deliver_at, created_at)
SELECT eventgate_uuidv7(ev.created_at), %(tenant_id)s, ev.id, %(endpoint_id)s, 'default',
       coalesce(ev.deliver_at, now()), ev.deliver_at, ev.created_at
FROM ev
"""
ROUNDS = 300
CLAIM = {"queue": "default", "circuit_threshold": 5, "limit": 100, "late": 0.0}


def _median_ms(conn: psycopg.Connection, query: str, params: dict | None) -> float:
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        with conn.transaction(force_rollback=True):
            rows = conn.execute(query, params).fetchall()
        samples.append((time.perf_counter() - started) * 1000)
    assert query != CANDIDATES or len(rows) == CLAIM["limit"], len(rows)
    return statistics.median(samples)


def _fill(conn: psycopg.Connection, ids: dict, count: int, scheduled: bool) -> None:
    for start in range(0, count, 100_000):
        size = min(100_000, count - start)
        conn.execute(FILL, {**ids, "count": size, "scheduled": scheduled})
    conn.execute("VACUUM ANALYZE deliveries")
    conn.execute("VACUUM ANALYZE events")


def _setup(conn: psycopg.Connection) -> dict:
    tenant_id = conn.execute(
        "INSERT INTO tenants (id, name) VALUES (gen_random_uuid(), 'scheduled-claims') RETURNING id"
    ).fetchone()[0]
    endpoint_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO endpoints (id, tenant_id, url, secret_encrypted, is_active)"
        " VALUES (%s, %s, 'https://example.com/later', %s, true)",
        (endpoint_id, tenant_id, seal_secret(endpoint_id, "secret", "whsec_" + "A" * 32)),
    )
    return {"tenant_id": tenant_id, "endpoint_id": endpoint_id}


@contextlib.contextmanager
def _own_database(database_url: str) -> Iterator[str]:
    """A migrated database of its own on the same server: no running worker claims there."""
    name = "eventgate_bench_claims"
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")  # a fixed name, never input
        admin.execute(f"CREATE DATABASE {name}")
    url = urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
    try:
        migrate.apply(url)
        yield url
    finally:
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def measure(database_url: str, scheduled: int) -> None:
    """Print the claim's cost with 1,000 due deliveries, before and after `scheduled` more."""
    with _own_database(database_url) as url:
        _measure(url, scheduled)


def _measure(database_url: str, scheduled: int) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET plan_cache_mode = force_generic_plan")  # as the workers run it
        ids = _setup(conn)
        _fill(conn, ids, 1_000, scheduled=False)
        ceiling = _median_ms(conn, "SELECT 1", None)
        before = _median_ms(conn, CANDIDATES, CLAIM)
        started = time.perf_counter()
        _fill(conn, ids, scheduled, scheduled=True)
        took = time.perf_counter() - started
        after = _median_ms(conn, CANDIDATES, CLAIM)
        plan = conn.execute("EXPLAIN " + CANDIDATES, CLAIM).fetchall()
    print(f"filled {scheduled:,} scheduled deliveries in {took:.0f} s")
    print(f"{'SELECT 1 round trip (ceiling)':42} p50 {ceiling:6.2f} ms")
    print(f"{'claim 100 of 1,000 due, 0 scheduled':42} p50 {before:6.2f} ms  ratio 1.00")
    label = f"claim 100 of 1,000 due, {scheduled:,} sched."
    print(f"{label:42} p50 {after:6.2f} ms  ratio {after / before:4.2f}")
    indexes = sorted({line.split(" using ")[1].split()[0] for (line,) in plan if " using " in line})
    print("claim plan reads by index:", ", ".join(indexes))
