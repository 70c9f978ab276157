"""Firing schedules: each tick exactly once across concurrent firers and a firer killed
mid-tick, daylight-saving changes as cron runs them, catch-up or skip after an outage, and the
periodic task end to end through a real worker to a real receiver. Time is given to the firing
function, never waited for."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from db import schedule_runs, schedules
from db.ids import new_id
from tests.helpers import ROOT, add_endpoint, auth, make_key, running_worker, wait_for
from workers.app import app as worker_app
from workers.schedules import fire_schedules

GRACE = 300.0
BERLIN = ZoneInfo("Europe/Berlin")


async def add_schedule(url: str, cron: str, first: datetime, **fields) -> schedules.Schedule:
    """A schedule of a fresh tenant whose next tick is `first` (time set by the test)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(
            "INSERT INTO tenants (id, name) VALUES (gen_random_uuid(), %s)"
            " ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
            (fields.pop("tenant", "clock"),),
        )
        (tenant_id,) = await cursor.fetchone()
        row = schedules.ScheduleColumns(
            id=new_id(),
            tenant_id=tenant_id,
            name="s",
            cron=cron,
            timezone=fields.pop("timezone", "UTC"),
            event_type="tick",
            source="schedule",
            payload={},
            channels=[],
            catch_up=fields.pop("catch_up", True),
            paused=False,
            next_run_at=first,
        )
        return await schedules.insert(conn, row)


async def fire(url: str, now: datetime) -> list[schedules.Run]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        return await schedule_runs.fire_due(conn, now, GRACE)


def runs_of(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT schedule_id, tick, status, missed, event_id FROM schedule_runs ORDER BY tick"
        ).fetchall()


def count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # fixed names only


async def test_each_tick_fires_once_across_concurrent_firers(database_url):
    tick = datetime.now(UTC).replace(second=0, microsecond=0)
    made = [await add_schedule(database_url, "* * * * *", tick) for _ in range(30)]
    now = tick + timedelta(seconds=5)
    fired = await asyncio.gather(*(fire(database_url, now) for _ in range(6)))
    assert sum(len(runs) for runs in fired) == 30
    runs = runs_of(database_url)
    assert sorted(run[0] for run in runs) == sorted(row.id for row in made)
    assert {run[1] for run in runs} == {tick}
    assert count(database_url, "events") == 30
    # Fired again at the same moment (a restarted worker, a second periodic job): nothing.
    assert await fire(database_url, now) == []
    # The next minute fires each once more.
    later = await asyncio.gather(
        *(fire(database_url, now + timedelta(minutes=1)) for _ in range(3))
    )
    assert sum(len(runs) for runs in later) == 30


FIRER = """
import asyncio, sys
from datetime import datetime
import psycopg
from db import schedule_runs
from db.schedules import Schedule
from db.query import fetch_one

async def main(url, now):
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        async with conn.transaction():
            row = await fetch_one(conn, schedule_runs.CLAIM_DUE, {"now": now}, Schedule)
            await schedule_runs.fire_tick(conn, row, now, 300.0)
            print("fired", flush=True)
            await asyncio.sleep(60)

asyncio.run(main(sys.argv[1], datetime.fromisoformat(sys.argv[2])))
"""


async def test_a_firer_killed_mid_tick_leaves_the_tick_to_another_once(database_url):
    tick = datetime.now(UTC).replace(second=0, microsecond=0)
    await add_schedule(database_url, "* * * * *", tick)
    now = tick + timedelta(seconds=5)
    command = [sys.executable, "-c", textwrap.dedent(FIRER), database_url, now.isoformat()]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) as firer:
        try:
            assert firer.stdout.readline().strip() == "fired"
            # Its event and run are written but not committed; the schedule is locked.
            assert await fire(database_url, now) == []
            os.kill(firer.pid, signal.SIGKILL)
            firer.wait(timeout=10)
        finally:
            if firer.poll() is None:
                firer.kill()
    fired: list = []

    async def refired() -> bool:
        fired.extend(await fire(database_url, now))
        return bool(fired)

    await wait_for(refired, timeout=10)
    assert len(runs_of(database_url)) == 1
    assert count(database_url, "events") == 1
    assert await fire(database_url, now) == []


def berlin(*parts: int, fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=BERLIN, fold=fold).astimezone(UTC)


async def step_through(url: str, start: datetime, end: datetime, step: timedelta) -> None:
    now = start
    while now <= end:
        await fire(url, now)
        now += step


@pytest.mark.parametrize(
    ("cron", "first", "end", "expected"),
    [
        # Spring forward (02:00 -> 03:00 on 2027-03-28): the skipped 02:30 fires at 03:00.
        (
            "30 2 * * *",
            berlin(2027, 3, 27, 2, 30),
            berlin(2027, 3, 29, 12, 0),
            [berlin(2027, 3, 27, 2, 30), berlin(2027, 3, 28, 3, 0), berlin(2027, 3, 29, 2, 30)],
        ),
        # Fall back (03:00 -> 02:00 on 2027-10-31): the repeated 02:30 fires once.
        (
            "30 2 * * *",
            berlin(2027, 10, 30, 2, 30),
            berlin(2027, 11, 1, 12, 0),
            [berlin(2027, 10, 30, 2, 30), berlin(2027, 10, 31, 2, 30), berlin(2027, 11, 1, 2, 30)],
        ),
        # A wildcard hour runs in both copies of the repeated hour, as cron does.
        (
            "15 * * * *",
            berlin(2027, 10, 31, 1, 15),
            berlin(2027, 10, 31, 3, 20),
            [
                berlin(2027, 10, 31, 1, 15),
                berlin(2027, 10, 31, 2, 15),
                berlin(2027, 10, 31, 2, 15, fold=1),
                berlin(2027, 10, 31, 3, 15),
            ],
        ),
    ],
)
async def test_daylight_saving_changes_fire_as_cron_does(database_url, cron, first, end, expected):
    await add_schedule(database_url, cron, first, timezone="Europe/Berlin")
    await step_through(database_url, first - timedelta(hours=1), end, timedelta(minutes=5))
    assert [run[1] for run in runs_of(database_url)] == expected
    assert {run[2] for run in runs_of(database_url)} == {"succeeded"}


async def test_missed_ticks_fire_once_on_recovery_or_are_skipped(database_url):
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=12)
    catching = await add_schedule(database_url, "0 * * * *", hour, tenant="a")
    skipping = await add_schedule(database_url, "0 * * * *", hour, tenant="b", catch_up=False)
    # Every worker was down for nine and a half hours.
    now = hour + timedelta(hours=9, minutes=30)
    runs = {run.schedule_id: run for run in await fire(database_url, now)}
    latest = hour + timedelta(hours=9)
    assert (runs[catching.id].tick, runs[catching.id].status) == (latest, "succeeded")
    assert runs[catching.id].missed == 9
    assert (runs[skipping.id].tick, runs[skipping.id].status) == (latest, "skipped")
    assert runs[skipping.id].missed == 9
    assert runs[skipping.id].event_id is None
    assert count(database_url, "events") == 1
    # Both go on at the next tick; one within the grace fires even with catch_up off.
    runs = await fire(database_url, latest + timedelta(hours=1, seconds=20))
    assert sorted((run.status, run.missed) for run in runs) == [
        ("succeeded", 0),
        ("succeeded", 0),
    ]


async def test_the_periodic_task_fires_and_a_worker_delivers(
    client, database_url, receiver, worker_env
):
    key = await make_key(database_url, tenant="clock")
    await add_endpoint(client, key, receiver, "hook", event_types=["tick"])
    created = await client.post(
        "/v1/schedules",
        json={"name": "n", "cron": "* * * * *", "event_type": "tick", "payload": {"a": 1}},
        headers=auth(key),
    )
    schedule_id = created.json()["id"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE schedules SET next_run_at = now() - interval '10 seconds'")
    async with worker_app.open_async():
        await fire_schedules.defer_async(timestamp=0)
    async with running_worker(queues=["maintenance", "default"]):
        await wait_for(lambda: len(receiver.at("hook")) == 1)
    delivered = receiver.at("hook")[0]
    assert delivered.body["payload"] == {"a": 1}
    assert delivered.verified
    (run,) = runs_of(database_url)
    assert run[0].hex == schedule_id.replace("-", "")
    assert str(run[4]) == delivered.body["id"]
