"""API keys: creation, listing, rotation, revocation, scopes and the verification cache."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import psycopg
from litestar.testing import AsyncTestClient

from app.errors import Unauthorized
from app.main import create_app
from tests.helpers import auth, event_body, make_key, wait_for


async def test_create_returns_the_key_once_and_never_again(client, database_url, caplog):
    caplog.set_level(logging.DEBUG)
    admin = await make_key(database_url)
    created = await client.post(
        "/v1/keys", json={"name": "ci", "scopes": ["events:write"]}, headers=auth(admin)
    )
    assert created.status_code == 201
    body = created.json()
    new_key = body["key"]
    assert new_key.startswith(f"eg_{body['prefix']}_")
    assert body["scopes"] == ["events:write"]

    listed = await client.get("/v1/keys", headers=auth(admin))
    fetched = await client.get(f"/v1/keys/{body['id']}", headers=auth(admin))
    for response in (listed, fetched):
        assert response.status_code == 200
        assert new_key not in response.text
        assert new_key[len("eg_0123456789abcdef_") :] not in response.text  # the secret part
        assert "secret_hash" not in response.text
        assert "argon2" not in response.text
    assert body["id"] in [k["id"] for k in listed.json()["keys"]]
    assert (
        await client.post("/v1/events", json=event_body(), headers=auth(new_key))
    ).status_code == 201
    assert new_key not in caplog.text
    assert admin not in caplog.text


async def test_key_list_pages(client, database_url):
    admin = await make_key(database_url)
    for i in range(4):
        await client.post(
            "/v1/keys", json={"name": f"k{i}", "scopes": ["events:read"]}, headers=auth(admin)
        )
    first = (await client.get("/v1/keys", params={"limit": 3}, headers=auth(admin))).json()
    assert len(first["keys"]) == 3
    rest = await client.get(
        "/v1/keys",
        params={"limit": 3, "cursor": first["pagination"]["next_cursor"]},
        headers=auth(admin),
    )
    assert len(rest.json()["keys"]) == 2
    assert rest.json()["pagination"]["next_cursor"] is None


async def test_bad_key_requests(client, database_url):
    admin = await make_key(database_url)
    for body in (
        {"name": "x", "scopes": ["nope"]},
        {"name": "x", "scopes": []},
        {"scopes": ["admin"]},
        {"name": "x", "scopes": ["admin"], "expires_at": "2000-01-01T00:00:00Z"},
    ):
        response = await client.post("/v1/keys", json=body, headers=auth(admin))
        assert response.status_code == 400, body
    limited = await make_key(database_url, scopes=["keys:manage", "events:read"])
    escalate = await client.post(
        "/v1/keys", json={"name": "x", "scopes": ["events:write"]}, headers=auth(limited)
    )
    assert escalate.status_code == 403
    allowed = await client.post(
        "/v1/keys", json={"name": "x", "scopes": ["events:read"]}, headers=auth(limited)
    )
    assert allowed.status_code == 201
    assert (await client.get("/v1/keys/nope", headers=auth(admin))).status_code == 400


async def test_unusable_keys_get_401(client, database_url):
    past = datetime.now(UTC) - timedelta(seconds=1)
    expired = await make_key(database_url, expires_at=past)
    revoked = await make_key(database_url)
    admin = await make_key(database_url)
    revoked_id = (await client.get("/v1/keys", headers=auth(admin))).json()["keys"][1]["id"]
    assert (await client.delete(f"/v1/keys/{revoked_id}", headers=auth(admin))).status_code == 200
    wrong_secret = admin[:-4] + ("AAAA" if not admin.endswith("AAAA") else "BBBB")
    cases = {
        "missing": {},
        "expired": auth(expired),
        "revoked": auth(revoked),
        "malformed": auth("eg_nothing"),
        "unknown prefix": auth("eg_0123456789abcdef_" + "A" * 43),
        "wrong secret": auth(wrong_secret),
        "bad bearer": {"Authorization": "Basic abc"},
    }
    for name, headers in cases.items():
        response = await client.get("/v1/inbox", headers=headers)
        assert response.status_code == 401, name
        assert response.json()["error"]["code"] == "unauthorized"


async def test_missing_scope_is_403(client, database_url):
    reader = await make_key(database_url, scopes=["events:read"])
    assert (
        await client.post("/v1/events", json=event_body(), headers=auth(reader))
    ).status_code == 403
    assert (await client.get("/v1/keys", headers=auth(reader))).status_code == 403
    writer = await make_key(database_url, scopes=["events:write"])
    assert (await client.get("/v1/inbox", headers=auth(writer))).status_code == 403
    response = await client.post(
        "/v1/events/batch", json={"events": [event_body()]}, headers=auth(reader)
    )
    assert response.status_code == 403
    assert response.json()["error"]["details"] == {"required_scope": "events:write"}


async def test_rotation_with_grace_then_without(client, database_url):
    admin = await make_key(database_url)
    old = await make_key(database_url, scopes=["events:read"])
    old_id = next(
        k["id"]
        for k in (await client.get("/v1/keys", headers=auth(admin))).json()["keys"]
        if k["scopes"] == ["events:read"]
    )
    rotated = await client.post(
        f"/v1/keys/{old_id}/rotate", json={"grace_period_seconds": 3600}, headers=auth(admin)
    )
    assert rotated.status_code == 201
    new = rotated.json()
    assert new["scopes"] == ["events:read"]
    assert new["id"] != old_id
    assert (await client.get("/v1/inbox", headers=auth(old))).status_code == 200
    assert (await client.get("/v1/inbox", headers=auth(new["key"]))).status_code == 200

    again = await client.post(f"/v1/keys/{new['id']}/rotate", headers=auth(admin))
    assert again.status_code == 201
    assert (await client.get("/v1/inbox", headers=auth(new["key"]))).status_code == 401
    assert (await client.get("/v1/inbox", headers=auth(again.json()["key"]))).status_code == 200
    await client.delete(f"/v1/keys/{again.json()['id']}", headers=auth(admin))
    revoked = await client.post(f"/v1/keys/{again.json()['id']}/rotate", headers=auth(admin))
    assert revoked.status_code == 409


async def test_revocation_reaches_another_instance_by_notify(settings, database_url):
    admin = await make_key(database_url)
    victim = await make_key(database_url, scopes=["events:read"])
    prefix = victim.split("_")[1]
    async with (
        AsyncTestClient(app=create_app(settings)) as first,
        AsyncTestClient(app=create_app(settings)) as second,
    ):
        for instance in (first, second):
            listener = instance.app.state.listener
            await wait_for(lambda listener=listener: listener.listening, what="listener up")
            assert (await instance.get("/v1/inbox", headers=auth(victim))).status_code == 200
        # Cached in the second process: only its NOTIFY listener can make it forget the key.
        assert second.app.state.key_verifier.is_cached(prefix)
        keys = (await first.get("/v1/keys", headers=auth(admin))).json()["keys"]
        victim_id = next(k["id"] for k in keys if k["scopes"] == ["events:read"])
        assert (await first.delete(f"/v1/keys/{victim_id}", headers=auth(admin))).status_code == 200
        verifier = second.app.state.key_verifier
        await wait_for(lambda: not verifier.is_cached(prefix), what="the NOTIFY eviction")
        assert (await second.get("/v1/inbox", headers=auth(victim))).status_code == 401


async def test_last_used_at_is_recorded_without_a_write_per_request(client, database_url):
    admin = await make_key(database_url)
    for _ in range(5):
        await client.get("/v1/inbox", headers=auth(admin))

    async def recorded() -> bool:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            cur = await conn.execute("SELECT last_used_at FROM api_keys")
            row = await cur.fetchone()
        return row is not None and row[0] is not None

    await wait_for(recorded, what="last_used_at flushed")
    shown = (await client.get("/v1/keys", headers=auth(admin))).json()["keys"][0]
    assert shown["last_used_at"] is not None


async def test_concurrent_requests_with_a_cold_key_share_one_argon2_run(database_url, monkeypatch):
    from app.invalidation import InvalidationListener
    from app.keys import secrets
    from app.keys.verifier import KeyVerifier
    from db.pool import open_pool

    key = await make_key(database_url)
    wrong = key[:-1] + ("y" if key.endswith("x") else "x")
    runs = []
    real_verify = secrets.verify_key

    def counting_verify(secret_hash: str, presented: str) -> bool:
        runs.append(presented)
        return real_verify(secret_hash, presented)

    monkeypatch.setattr(secrets, "verify_key", counting_verify)
    pool = await open_pool(database_url, min_size=1, max_size=4)
    try:
        verifier = KeyVerifier(pool, InvalidationListener(database_url), ttl_seconds=60)
        principals = await asyncio.gather(*(verifier.verify(key) for _ in range(20)))
        bad = await asyncio.gather(
            *(verifier.verify(wrong) for _ in range(5)), return_exceptions=True
        )
    finally:
        await pool.close()
    assert len({p.key_id for p in principals}) == 1
    assert len(runs) == 2  # one for the 20 good ones, one for the 5 bad ones
    assert all(isinstance(exc, Unauthorized) for exc in bad)


async def test_a_flood_of_wrong_secrets_hashes_little_and_never_all_at_once(
    database_url, monkeypatch
):
    from app.invalidation import InvalidationListener
    from app.keys import secrets
    from app.keys.verifier import ARGON2_AT_ONCE, KeyVerifier
    from db.pool import open_pool

    key = await make_key(database_url)
    prefix = key.split("_")[1]
    running, most, runs = 0, 0, []
    real_verify = secrets.verify_key

    def counting_verify(secret_hash: str, presented: str) -> bool:
        nonlocal running, most
        running += 1
        most = max(most, running)
        runs.append(presented)
        try:
            return real_verify(secret_hash, presented)
        finally:
            running -= 1

    monkeypatch.setattr(secrets, "verify_key", counting_verify)
    guesses = [f"eg_{prefix}_{'g' * 40}{n:03d}" for n in range(30)]
    pool = await open_pool(database_url, min_size=1, max_size=4)
    try:
        verifier = KeyVerifier(pool, InvalidationListener(database_url), ttl_seconds=0.0)
        assert (await verifier.verify(key, "198.51.100.7")).prefix == prefix  # known from now
        runs.clear()
        refused = await asyncio.gather(
            *(verifier.verify(g, "203.0.113.66") for g in guesses), return_exceptions=True
        )
        assert all(isinstance(exc, Unauthorized) for exc in refused)
        assert most <= ARGON2_AT_ONCE
        assert len(runs) <= ARGON2_AT_ONCE  # the first failure stops that address hashing
        # The holder is served at once, from anywhere, the guesser's address included, and
        # without argon2 (nothing is cached: ttl 0): its secret is known.
        for client in ("198.51.100.7", "203.0.113.66"):
            assert (await verifier.verify(key, client)).prefix == prefix
        assert len(runs) <= ARGON2_AT_ONCE
        # A fresh process, at another address than the guesser's, verifies it with argon2.
        fresh = KeyVerifier(pool, InvalidationListener(database_url), ttl_seconds=0.0)
        await asyncio.gather(
            *(fresh.verify(g, "203.0.113.66") for g in guesses), return_exceptions=True
        )
        assert (await fresh.verify(key, "198.51.100.7")).prefix == prefix
    finally:
        await pool.close()
