"""Endpoint management, destination checks and transactional fan-out."""

from __future__ import annotations

import msgspec
import psycopg
import pytest
from litestar.testing import AsyncTestClient

from app.main import create_app
from core.queues import DELIVERIES_DUE_CHANNEL
from db import events
from tests.helpers import auth, event_body, event_row, make_key
from workers.enqueue import wake


async def test_endpoint_crud_and_secret_rotation(client, database_url):
    key = await make_key(database_url)
    created = await client.post(
        "/v1/endpoints",
        json={
            "url": "https://hooks.example.test/in",
            "event_types": ["invoice.*"],
            "rate_limit_per_s": 10,
            "metadata": {"team": "billing"},
        },
        headers=auth(key),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    endpoint, secret = body["endpoint"], body["secret"]
    assert secret.startswith("whsec_")
    assert endpoint["circuit"] == "closed"
    assert endpoint["is_active"] is True
    assert "secret" not in endpoint
    path = f"/v1/endpoints/{endpoint['id']}"

    patched = await client.patch(path, json={"ordered": True, "event_types": []}, headers=auth(key))
    assert patched.json()["ordered"] is True
    assert patched.json()["event_types"] == []
    assert patched.json()["rate_limit_per_s"] == 10  # absent fields stay
    cleared = await client.patch(path, json={"rate_limit_per_s": None}, headers=auth(key))
    assert cleared.json()["rate_limit_per_s"] is None

    assert (await client.get(f"{path}/secret", headers=auth(key))).json() == {
        "secret": secret,
        "previous_secret": None,
        "previous_secret_expires_at": None,
        "public_key": None,
        "previous_public_key": None,
    }
    rotated = (await client.post(f"{path}/rotate-secret", headers=auth(key))).json()
    assert rotated["secret"] != secret
    assert rotated["previous_secret"] == secret
    assert rotated["previous_secret_expires_at"] is not None

    for n in range(3):
        await client.post(
            "/v1/endpoints", json={"url": f"https://h{n}.example.test/"}, headers=auth(key)
        )
    page = (await client.get("/v1/endpoints?limit=3", headers=auth(key))).json()
    rest = (
        await client.get(
            f"/v1/endpoints?limit=3&cursor={page['pagination']['next_cursor']}", headers=auth(key)
        )
    ).json()
    assert len(page["endpoints"]) + len(rest["endpoints"]) == 4
    assert rest["pagination"]["next_cursor"] is None

    deleted = await client.delete(path, headers=auth(key))
    assert deleted.status_code == 200
    assert deleted.json()["disabled_reason"] == "deleted"
    assert (await client.get(path, headers=auth(key))).status_code == 404
    bad = await client.patch(path, json={"nope": 1}, headers=auth(key))
    assert bad.status_code in (400, 404)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "ftp://example.test/",
        "not a url",
    ],
)
async def test_non_public_or_malformed_destinations_are_refused(settings, url):
    strict = create_app(
        msgspec.structs.replace(settings, allow_private_destinations=False, pool_max_size=4)
    )
    async with AsyncTestClient(app=strict) as client:
        key = await make_key(settings.database_url)
        response = await client.post("/v1/endpoints", json={"url": url}, headers=auth(key))
        assert response.status_code == 400, response.text
        assert response.json()["error"]["details"]["field"] == "url"
        assert (await client.get("/v1/endpoints", headers=auth(key))).json()["endpoints"] == []


def listening(database_url: str) -> psycopg.Connection:
    """A connection that LISTENs where due deliveries are announced."""
    conn = psycopg.connect(database_url, autocommit=True)
    conn.execute(f"LISTEN {DELIVERIES_DUE_CHANNEL}")
    return conn


def announced(conn: psycopg.Connection, wait: float = 0.5) -> list[str]:
    """The queues announced on the connection within `wait` seconds."""
    return [note.payload for note in conn.notifies(timeout=wait)]


async def test_a_rolled_back_ingest_leaves_no_delivery_and_wakes_no_worker(client, database_url):
    key = await make_key(database_url)
    await client.post("/v1/endpoints", json={"url": "http://127.0.0.1:9/"}, headers=auth(key))
    with psycopg.connect(database_url) as conn:
        tenant_id = conn.execute("SELECT id FROM tenants").fetchone()[0]
    row = event_row(tenant_id)

    async def ingest_then_die(conn: psycopg.AsyncConnection) -> None:
        async with conn.transaction():
            fan_out = await events.insert_with_fan_out(conn, [row])
            await wake(conn, fan_out.wake_queues)
            assert fan_out.wake_queues == ["default"]
            counted = await conn.execute("SELECT count(*) FROM deliveries")
            assert await counted.fetchone() == (1,)
            raise RuntimeError("the API died before COMMIT")

    with listening(database_url) as listener:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            with pytest.raises(RuntimeError):
                await ingest_then_die(conn)
            counted = await conn.execute(
                "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM deliveries),"
                " (SELECT count(*) FROM procrastinate_jobs)"
            )
            assert await counted.fetchone() == (0, 0, 0)
        assert announced(listener) == []  # a NOTIFY goes out at COMMIT, never on ROLLBACK


async def test_ingest_commits_the_event_its_deliveries_and_wakes_its_queue(client, database_url):
    key = await make_key(database_url)
    for n in range(2):
        await client.post(
            "/v1/endpoints", json={"url": f"http://127.0.0.1:9/{n}"}, headers=auth(key)
        )
    disabled = (
        await client.post("/v1/endpoints", json={"url": "http://127.0.0.1:9/d"}, headers=auth(key))
    ).json()["endpoint"]
    await client.post(f"/v1/endpoints/{disabled['id']}/disable", headers=auth(key))
    with listening(database_url) as listener:
        for priority in ("high", "normal", "normal", "low"):
            body = event_body(metadata={"priority": priority})
            response = await client.post("/v1/events", json=body, headers=auth(key))
            assert response.status_code == 201
        # One notification per ingest and queue, however many endpoints; no job is created.
        assert announced(listener) == ["critical", "default", "default", "bulk"]
    with psycopg.connect(database_url) as conn:
        per_queue = dict(
            conn.execute(
                "SELECT queue, count(*) FROM deliveries WHERE next_attempt_at < 'infinity'"
                " GROUP BY queue"
            ).fetchall()
        )
        parked = conn.execute(
            "SELECT count(*) FROM deliveries WHERE next_attempt_at = 'infinity'"
        ).fetchone()[0]
        jobs = conn.execute("SELECT count(*) FROM procrastinate_jobs").fetchone()[0]
    assert per_queue == {"critical": 2, "default": 4, "bulk": 2}
    assert parked == 4  # the disabled endpoint's deliveries wait
    assert jobs == 0


async def test_deleting_an_endpoint_ends_its_unfinished_deliveries(client, database_url):
    key = await make_key(database_url)
    endpoint = (
        await client.post("/v1/endpoints", json={"url": "http://127.0.0.1:9/"}, headers=auth(key))
    ).json()["endpoint"]
    await client.post("/v1/events", json=event_body(), headers=auth(key))
    await client.delete(f"/v1/endpoints/{endpoint['id']}", headers=auth(key))
    (delivery,) = (await client.get("/v1/deliveries", headers=auth(key))).json()["deliveries"]
    assert delivery["status"] == "dead"
    assert delivery["last_error"] == "endpoint deleted"
    # New events no longer fan out to it.
    await client.post("/v1/events", json=event_body(), headers=auth(key))
    assert len((await client.get("/v1/deliveries", headers=auth(key))).json()["deliveries"]) == 1


async def test_bodies_must_be_json_on_every_route_that_takes_one(client, database_url):
    key = await make_key(database_url)
    headers = {**auth(key), "Content-Type": "text/plain"}
    for path in ("/v1/endpoints", "/v1/event-types", "/v1/keys"):
        response = await client.post(path, content=b"hello", headers=headers)
        assert response.status_code == 415, path
        assert response.json()["error"]["code"] == "unsupported_media_type"
    # Routes whose body is optional still work without one.
    endpoint = (
        await client.post("/v1/endpoints", json={"url": "http://127.0.0.1:9/"}, headers=auth(key))
    ).json()["endpoint"]
    rotated = await client.post(f"/v1/endpoints/{endpoint['id']}/rotate-secret", headers=auth(key))
    assert rotated.status_code == 200
