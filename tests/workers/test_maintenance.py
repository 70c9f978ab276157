"""Partition rotation, run by a real procrastinate worker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from db.endpoint_secrets import seal_secret
from workers.app import app as worker_app
from workers.maintenance import rotate_partitions


def partition_days(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT partition_name FROM eventgate_partitions WHERE parent_table = 'events'"
        ).fetchall()
    return sorted(name.rsplit("_p", 1)[1] for (name,) in rows)


@pytest.fixture
def worker_env(database_url, monkeypatch):
    monkeypatch.setenv("EVENTGATE_DATABASE_URL", database_url)
    monkeypatch.setenv("EVENTGATE_EVENT_RETENTION_DAYS", "7")
    monkeypatch.setenv("EVENTGATE_PARTITIONS_AHEAD_DAYS", "10")
    return database_url


async def test_rotation_creates_ahead_and_drops_past_retention(worker_env):
    url = worker_env
    today = datetime.now(UTC).date()
    old_day = today - timedelta(days=20)
    recent_day = today - timedelta(days=5)
    with psycopg.connect(url, autocommit=True) as conn:
        for day in (old_day, recent_day):
            conn.execute("SELECT eventgate_create_daily_partitions('events', %s, 0)", (day,))
    assert old_day.strftime("%Y%m%d") in partition_days(url)

    async with worker_app.open_async():
        await rotate_partitions.defer_async(timestamp=0)
        await worker_app.run_worker_async(wait=False, install_signal_handlers=False)
        jobs = await worker_app.job_manager.list_jobs_async()
    days = partition_days(url)
    assert old_day.strftime("%Y%m%d") not in days
    assert recent_day.strftime("%Y%m%d") in days
    for ahead in range(11):
        assert (today + timedelta(days=ahead)).strftime("%Y%m%d") in days
    # Successful jobs are deleted by the worker; a failed one would still be listed (a periodic
    # job deferred at a quarter hour while the test ran may still wait: `todo`).
    assert [(job.task_name, job.status) for job in jobs if job.status != "todo"] == []


async def test_deliveries_and_attempts_keep_their_own_retention(worker_env, monkeypatch):
    url = worker_env
    monkeypatch.setenv("EVENTGATE_DELIVERY_RETENTION_DAYS", "30")
    today = datetime.now(UTC).date()
    kept_day, dropped_day = today - timedelta(days=20), today - timedelta(days=40)
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("events", "deliveries", "delivery_attempts"):
            for day in (kept_day, dropped_day):
                conn.execute(
                    "SELECT eventgate_create_daily_partitions(%s::regclass, %s, 0)", (table, day)
                )

    async with worker_app.open_async():
        await rotate_partitions.defer_async(timestamp=0)
        await worker_app.run_worker_async(
            wait=False, install_signal_handlers=False, queues=["maintenance"]
        )

    with psycopg.connect(url) as conn:
        names = {
            name for (name,) in conn.execute("SELECT partition_name FROM eventgate_partitions")
        }
    kept, dropped = kept_day.strftime("%Y%m%d"), dropped_day.strftime("%Y%m%d")
    # Events keep 7 days; deliveries and their attempts keep 30.
    assert f"events_p{kept}" not in names
    for table in ("deliveries", "delivery_attempts"):
        assert f"{table}_p{kept}" in names
        assert f"{table}_p{dropped}" not in names
        assert f"{table}_p{(today + timedelta(days=10)).strftime('%Y%m%d')}" in names


async def test_an_events_day_with_unfinished_deliveries_outlives_its_retention(worker_env):
    url = worker_env
    today = datetime.now(UTC).date()
    waiting_day, done_day = today - timedelta(days=20), today - timedelta(days=21)
    with psycopg.connect(url, autocommit=True) as conn:
        tenant_id = conn.execute(
            "INSERT INTO tenants (id, name) VALUES (gen_random_uuid(), 'old') RETURNING id"
        ).fetchone()[0]
        endpoint_id = uuid.uuid4()
        conn.execute(
            "INSERT INTO endpoints (id, tenant_id, url, secret_encrypted)"
            " VALUES (%s, %s, 'https://x.test/', %s)",
            (endpoint_id, tenant_id, seal_secret(endpoint_id, "secret", "whsec_x")),
        )
        for day, status in ((waiting_day, "pending"), (done_day, "succeeded")):
            for table in ("events", "deliveries"):
                conn.execute(
                    "SELECT eventgate_create_daily_partitions(%s::regclass, %s, 0)", (table, day)
                )
            at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
            event_id = conn.execute(
                "INSERT INTO events (id, tenant_id, source, event_type, payload, created_at)"
                " VALUES (eventgate_uuidv7(%s), %s, 's', 't', '{}', %s) RETURNING id",
                (at, tenant_id, at),
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, queue, status,"
                " created_at) VALUES (eventgate_uuidv7(%s), %s, %s, %s, 'default', %s, %s)",
                (at, tenant_id, event_id, endpoint_id, status, at),
            )

    async with worker_app.open_async():
        await rotate_partitions.defer_async(timestamp=0)
        await worker_app.run_worker_async(
            wait=False, install_signal_handlers=False, queues=["maintenance"]
        )

    days = partition_days(url)
    assert waiting_day.strftime("%Y%m%d") in days  # its delivery still needs the payload
    assert done_day.strftime("%Y%m%d") not in days
