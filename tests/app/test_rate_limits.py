"""API rate limits: counted in Postgres, exact across API processes, with the IETF RateLimit
headers and the older X-RateLimit-* on every answer of a limited route."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import msgspec
import psycopg
from litestar.testing import AsyncTestClient

from app.main import create_app
from app.rate_limits.limiter import MAX_RESERVATION
from tests.helpers import api_process, auth, early_in_a_minute, event_body, make_key, wait_for

POLICY = re.compile(r'^"[a-z-]+";q=\d+;w=\d+(, "[a-z-]+";q=\d+;w=\d+)*$')
CURRENT = re.compile(r'^"([a-z-]+)";r=(\d+);t=(\d+)$')


def key_id_of(database_url: str, key: str) -> str:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT id FROM api_keys WHERE prefix = %s", (key.split("_")[1],))
        return str(row.fetchone()[0])


async def count_events(database_url: str) -> int:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute("SELECT count(*) FROM events")
        return (await cur.fetchone())[0]


def assert_headers(response: httpx.Response) -> re.Match:
    headers = response.headers
    assert POLICY.match(headers["ratelimit-policy"]), headers["ratelimit-policy"]
    current = CURRENT.match(headers["ratelimit"])
    assert current, headers["ratelimit"]
    assert headers["x-ratelimit-remaining"] == current.group(2)
    assert int(headers["x-ratelimit-reset"]) >= int(time.time())
    return current


async def test_two_processes_admit_exactly_the_limit(client, database_url):
    key = await make_key(database_url, rate_limit_tier="unlimited")  # only the route counts
    key_id = key_id_of(database_url, key)
    put = await client.put(
        f"/v1/keys/{key_id}/rate-limits",
        json={"overrides": [{"route": "POST /v1/events", "per_minute": 50}]},
        headers=auth(key),
    )
    assert put.status_code == 200, put.text
    with api_process(database_url) as first, api_process(database_url) as second:
        async with httpx.AsyncClient(timeout=30) as http:
            await early_in_a_minute()  # every send counted in one minute window
            sends = [
                http.post(f"{base}/v1/events", json=event_body(), headers=auth(key))
                for _ in range(100)
                for base in (first, second)
            ]
            answers = await asyncio.gather(*sends)
            codes = [a.status_code for a in answers]
            assert codes.count(201) == 50
            assert codes.count(429) == 150
            for answer in answers:
                current = assert_headers(answer)
                assert current.group(1) == "route-minute" or answer.status_code == 201
                if answer.status_code == 429:
                    error = answer.json()["error"]
                    assert error["code"] == "rate_limited"
                    assert 1 <= int(answer.headers["retry-after"]) <= 60
                    assert answer.headers["x-ratelimit-limit"] == "50"
            assert await count_events(database_url) == 50  # a refused request stored nothing
            # The minute passes: move the counted windows back by a minute, as time would.
            async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
                await conn.execute(
                    "UPDATE rate_limit_counters SET window_start = window_start - interval '1 minute'"
                )
            again = await http.post(f"{second}/v1/events", json=event_body(), headers=auth(key))
            assert again.status_code == 201
            assert again.headers["ratelimit"].startswith('"route-minute";r=49;')


async def test_every_answer_of_a_limited_route_carries_the_headers(client, database_url):
    key = await make_key(database_url)
    for response in (
        await client.get("/v1/inbox", headers=auth(key)),
        await client.post("/v1/events", json=event_body(extra=1), headers=auth(key)),
        await client.get("/v1/events/not-an-id", headers=auth(key)),
    ):
        current = assert_headers(response)
        assert response.headers["x-ratelimit-limit"] in ("50", "600", "20000", "200000")
        assert current.group(1) in ("burst", "minute", "hour", "day")
    policy = (await client.get("/v1/inbox", headers=auth(key))).headers["ratelimit-policy"]
    assert (
        policy
        == '"burst";q=50;w=1, "minute";q=600;w=60, "hour";q=20000;w=3600, "day";q=200000;w=86400'
    )


async def test_tiers_are_listed_and_a_tenant_may_only_lower_its_own(client, database_url):
    key = await make_key(database_url)
    tiers = (await client.get("/v1/rate-limit-tiers", headers=auth(key))).json()["tiers"]
    assert [t["name"] for t in tiers] == ["free", "premium", "standard", "unlimited"]
    free = await client.post(
        "/v1/keys",
        json={"name": "low", "scopes": ["events:read"], "rate_limit_tier": "free"},
        headers=auth(key),
    )
    assert free.status_code == 201
    assert free.json()["rate_limit_tier"] == "free"
    higher = await client.post(
        "/v1/keys",
        json={"name": "high", "scopes": ["events:read"], "rate_limit_tier": "premium"},
        headers=auth(key),
    )
    assert higher.status_code == 403
    unknown = await client.post(
        "/v1/keys",
        json={"name": "x", "scopes": ["admin"], "rate_limit_tier": "gold"},
        headers=auth(key),
    )
    assert unknown.status_code == 400
    key_id = free.json()["id"]
    raise_it = await client.patch(
        f"/v1/keys/{key_id}", json={"rate_limit_tier": "standard"}, headers=auth(key)
    )
    assert raise_it.status_code == 403
    rename = await client.patch(f"/v1/keys/{key_id}", json={"name": "renamed"}, headers=auth(key))
    assert rename.json()["name"] == "renamed"
    # The free key now answers with the free tier's figures.
    low = await client.get("/v1/inbox", headers=auth(free.json()["key"]))
    assert '"minute";q=60;w=60' in low.headers["ratelimit-policy"]


async def test_overrides_may_not_exceed_the_tier_and_name_real_routes(client, database_url):
    key = await make_key(database_url)
    key_id = key_id_of(database_url, key)
    path = f"/v1/keys/{key_id}/rate-limits"
    for body, status in (
        ({"overrides": [{"route": "POST /v1/events", "per_minute": 601}]}, 403),
        ({"overrides": [{"route": "POST /v1/nothing", "per_minute": 5}]}, 400),
        ({"overrides": [{"route": "POST /v1/events"}, {"route": "POST /v1/events"}]}, 400),
        ({"overrides": [{"route": "GET /v1/inbox", "per_hour": 100}]}, 200),
    ):
        response = await client.put(path, json=body, headers=auth(key))
        assert response.status_code == status, response.text
    shown = (await client.get(path, headers=auth(key))).json()
    assert shown == {
        "key_id": key_id,
        "tier": "standard",
        "overrides": [
            {"route": "GET /v1/inbox", "per_minute": None, "per_hour": 100, "per_day": None}
        ],
    }
    other = await make_key(database_url, tenant="other")
    assert (await client.get(path, headers=auth(other))).status_code == 404


async def test_requests_without_a_valid_key_are_limited_per_address_and_prefix(
    settings, database_url
):
    key = await make_key(database_url)
    prefix = key.split("_")[1]
    strict = msgspec.structs.replace(
        settings, anonymous_per_minute=5, wrong_secrets_per_prefix_per_minute=3
    )
    async with AsyncTestClient(app=create_app(strict)) as limited:
        listener = limited.app.state.listener
        await wait_for(lambda: listener.listening, what="listener up (keys are cached)")
        await early_in_a_minute()
        assert (await limited.get("/v1/inbox", headers=auth(key))).status_code == 200
        guesses = [f"eg_{prefix}_{'x' * 40}{n:03d}" for n in range(4)]
        codes = [(await limited.get("/v1/inbox", headers=auth(g))).status_code for g in guesses]
        assert codes == [401, 401, 401, 429]  # the prefix's three wrong secrets, then 429
        refused = await limited.get("/v1/inbox")
        assert refused.status_code == 401  # no key: the address has 5, 3 used by the guesses
        assert refused.headers["ratelimit"].startswith('"anonymous";r=1;')
        assert (await limited.get("/v1/inbox")).status_code == 401
        blocked = await limited.get("/v1/inbox")
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) >= 1
        # The valid key itself is not limited by what others did without one.
        assert (await limited.get("/v1/inbox", headers=auth(key))).status_code == 200


async def test_forwarded_for_counts_only_behind_a_trusted_proxy(database_url):
    for trusted, expected in (("", "127.0.0.1"), ("127.0.0.1/32", "203.0.113.9")):
        with api_process(database_url, EVENTGATE_TRUSTED_PROXIES=trusted) as base:
            forwarded = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9"}
            assert httpx.get(f"{base}/v1/inbox", headers=forwarded).status_code == 401
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            cur = await conn.execute(
                "SELECT bucket FROM rate_limit_counters WHERE bucket LIKE 'ip:%%'"
            )
            buckets = {row[0] for row in await cur.fetchall()}
            await conn.execute("DELETE FROM rate_limit_counters")
        assert buckets == {f"ip:{expected}"}


async def test_the_purge_forgets_ended_windows_and_refusals_are_counted(worker_env, client):
    from tests.helpers import running_worker
    from workers.app import app as worker_app

    key = await make_key(worker_env, scopes=["events:read"])
    async with await psycopg.AsyncConnection.connect(worker_env, autocommit=True) as conn:
        await conn.execute("INSERT INTO rate_limit_tiers (name, per_minute) VALUES ('tiny', 1)")
        await conn.execute("UPDATE api_keys SET rate_limit_tier = 'tiny'")
    await early_in_a_minute()
    assert (await client.get("/v1/inbox", headers=auth(key))).status_code == 200
    assert (await client.get("/v1/inbox", headers=auth(key))).status_code == 429
    async with await psycopg.AsyncConnection.connect(worker_env, autocommit=True) as conn:
        cur = await conn.execute("SELECT kind, refused FROM rate_limit_refusals")
        assert await cur.fetchall() == [("key", 1)]
        await conn.execute(
            "UPDATE rate_limit_counters SET window_start = window_start - interval '2 days'"
        )
    async with running_worker(queues=["maintenance"]):
        await worker_app.configure_task("purge_expired").defer_async(timestamp=0)

        async def purged() -> bool:
            async with await psycopg.AsyncConnection.connect(worker_env) as conn:
                cur = await conn.execute("SELECT count(*) FROM rate_limit_counters")
                return (await cur.fetchone())[0] == 0

        await wait_for(purged, what="counters purged")


async def test_remaining_never_repeats_under_concurrency(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO rate_limit_tiers (name, per_minute) VALUES ('flat', 1000)")
    key = await make_key(database_url, rate_limit_tier="flat")
    remaining: list[int] = []
    with api_process(database_url) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            for _ in range(3):
                answers = await asyncio.gather(
                    *(http.get("/v1/inbox", headers=auth(key)) for _ in range(40))
                )
                assert {a.status_code for a in answers} == {200}
                remaining += [int(a.headers["x-ratelimit-remaining"]) for a in answers]
    # Each admitted request its own number, all below the limit.
    assert len(set(remaining)) == len(remaining), sorted(remaining)
    assert max(remaining) <= 999


async def test_new_overrides_reach_every_process_at_commit(settings, database_url):
    slow_cache = msgspec.structs.replace(settings, rate_limit_cache_seconds=300.0)
    key = await make_key(database_url, rate_limit_tier="unlimited")
    key_id = key_id_of(database_url, key)
    async with (
        AsyncTestClient(app=create_app(slow_cache)) as first,
        AsyncTestClient(app=create_app(slow_cache)) as second,
    ):
        await early_in_a_minute()
        for instance in (first, second):
            listener = instance.app.state.listener
            await wait_for(lambda listener=listener: listener.listening, what="listener up")
            # Each process has now read (and cached for 300 s) that the key has no overrides.
            assert (await instance.get("/v1/inbox", headers=auth(key))).status_code == 200
        rules = {"overrides": [{"route": "GET /v1/inbox", "per_minute": 3}]}
        put = await first.put(f"/v1/keys/{key_id}/rate-limits", json=rules, headers=auth(key))
        assert put.status_code == 200, put.text
        limiter = second.app.state.rate_limiter
        await wait_for(lambda: not limiter._overrides, what="the other process told by NOTIFY")
        codes = [(await second.get("/v1/inbox", headers=auth(key))).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]


def day_hits(database_url: str, key_id: str) -> int:
    """What the key's day window has counted, served or reserved."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT hits FROM rate_limit_counters WHERE bucket = %s AND window_seconds = 86400",
            (f"key:{key_id}",),
        ).fetchone()
    return row[0]


async def test_a_busy_keys_next_batch_is_counted_before_it_is_needed(client, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO rate_limit_tiers (name, per_day) VALUES ('roomy', 1000000)")
    key = await make_key(database_url, rate_limit_tier="roomy")
    limiter = client.app.state.rate_limiter
    served = 0

    async def one_request() -> None:
        nonlocal served
        answer = await client.get("/v1/inbox", headers=auth(key))
        assert answer.status_code == 200, answer.text
        served += 1

    def reservation():
        (held,) = limiter._reservations.values()
        return held

    # One request counts itself, the next a batch; a batch a quarter left is refilled aside.
    while not limiter._reservations or reservation().spare is None:
        assert served < 300, "the batch running low was never refilled"
        await one_request()
    counted = day_hits(database_url, key_id_of(database_url, key))
    held = reservation()
    for _ in range(held.left + 1):  # the batch, and one more from the refill
        await one_request()
    # Served from the refill: the request that emptied the batch counted nothing itself.
    assert reservation() is held.spare
    assert day_hits(database_url, key_id_of(database_url, key)) == counted
    assert served < counted <= served + 2 * MAX_RESERVATION  # never more than two batches ahead


async def test_requests_that_find_a_keys_limits_stale_read_them_once(database_url):
    """However many requests find a key's limits out of date at once, one of them reads them:
    a read each would multiply their waits for the pool just when the API is busiest."""
    key = await make_key(database_url)
    env = {"EVENTGATE_RATE_LIMIT_CACHE_SECONDS": "0.1"}
    with api_process(database_url, **env) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            assert (await http.get("/v1/inbox", headers=auth(key))).status_code == 200
            await asyncio.sleep(0.2)  # the limits the process read have run out
            async with await psycopg.AsyncConnection.connect(database_url) as blocker:
                # Every read of the overrides waits behind this lock until it is let go.
                await blocker.execute("LOCK TABLE rate_limit_overrides IN ACCESS EXCLUSIVE MODE")
                answers = [
                    asyncio.ensure_future(http.get("/v1/inbox", headers=auth(key)))
                    for _ in range(30)
                ]
                await wait_for(lambda: overrides_reads_waiting(database_url) >= 1, what="a read")
                await asyncio.sleep(0.5)  # the other requests have had their chance to read
                assert overrides_reads_waiting(database_url) == 1
                await blocker.commit()
            assert {a.status_code for a in await asyncio.gather(*answers)} == {200}


def overrides_reads_waiting(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_locks"
            " WHERE NOT granted AND relation = 'rate_limit_overrides'::regclass"
        ).fetchone()[0]
