"""The delivery charts: real tries by a real worker, rolled up into delivery_stats (each try
counted once, however often the roll-up runs), drawn per minute, hour and day for the tenant
and for one endpoint."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import psycopg

from core.delivery_stats import percentile
from db import delivery_stats
from tests.app.console.helpers import sign_in
from tests.helpers import auth, event_body, make_key, running_worker, wait_for

SUMMARY = re.compile(r"([\d,]+) tries succeeded and ([\d,]+) failed")


async def roll_up(database_url: str) -> int:
    """Run the roll-up as the task does, counting every try up to now."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        async with conn.transaction():
            return await delivery_stats.roll_up_batch(
                conn, datetime.now(UTC) + timedelta(seconds=1), 10_000
            )


def summary(html: str) -> tuple[int, int]:
    found = SUMMARY.search(html)
    assert found, "no chart summary on the page"
    return int(found.group(1).replace(",", "")), int(found.group(2).replace(",", ""))


async def test_tries_are_rolled_up_once_and_drawn_for_the_tenant_and_an_endpoint(
    client, database_url, receiver, worker_env
):
    key = await make_key(database_url)
    ids = {}
    for name in ("steady", "flaky"):
        made = await client.post(
            "/v1/endpoints", json={"url": receiver.endpoint_url(name)}, headers=auth(key)
        )
        receiver.secrets[name] = [made.json()["secret"]]
        ids[name] = made.json()["endpoint"]["id"]
    receiver.scripts["flaky"] = [500, 500]  # its first two tries fail, then it answers 200
    for n in range(3):
        await client.post("/v1/events", json=event_body(payload={"n": n}), headers=auth(key))
    async with running_worker():
        await wait_for(lambda: len(receiver.at("flaky")) == 5 and len(receiver.at("steady")) == 3)

    assert await roll_up(database_url) == 8
    assert await roll_up(database_url) == 0  # counted once
    await sign_in(client, key)
    overview = (await client.get("/console/")).text
    assert summary(overview) == (6, 2)
    assert overview.count('<rect class="bad"') in (1, 2)  # the minute(s) with failures
    assert 'id="chart-latency"' in overview
    assert re.search(r"<circle class=\"rate\" cx=\"[\d.]+\" cy=\"[\d.]+\"", overview)
    flaky = (await client.get(f"/console/endpoints/{ids['flaky']}")).text
    assert summary(flaky) == (3, 2)
    steady = (await client.get(f"/console/endpoints/{ids['steady']}?view=day")).text
    assert summary(steady) == (3, 0)
    for view in ("hour", "day"):
        assert summary((await client.get(f"/console/?view={view}")).text) == (6, 2)
    assert (await client.get("/console/?view=week")).status_code == 400


def test_percentiles_are_read_from_the_buckets():
    buckets = [0] * 13
    buckets[4] = 90  # 50 < latency <= 100 ms
    buckets[7] = 10  # 500 < latency <= 1000 ms
    assert 50 < percentile(buckets, 0.5) <= 100
    assert 500 < percentile(buckets, 0.95) <= 1000
    assert percentile([0] * 13, 0.5) is None
