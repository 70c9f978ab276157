"""Audit logs: every change recorded in its own transaction, hash-chained per tenant, readable
with filters, verified by the CLI; no secret in any entry."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import psycopg

from tests.helpers import ROOT, auth, make_key

HOOK = {"url": "https://example.com/hook"}


async def entries(client, key: str, **params) -> list[dict]:
    response = await client.get("/v1/audit-logs", params=params, headers=auth(key))
    assert response.status_code == 200, response.text
    return response.json()["entries"]


def verify(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "EVENTGATE_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "cli", "audit", "verify", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


async def test_changes_are_recorded_with_their_actor_and_no_secret(client, database_url):
    key = await make_key(database_url)
    headers = {**auth(key), "User-Agent": "ops-script/1.0", "X-Request-ID": "req-42"}
    created = (await client.post("/v1/endpoints", json=HOOK, headers=headers)).json()
    endpoint_id = created["endpoint"]["id"]
    path = f"/v1/endpoints/{endpoint_id}"
    await client.patch(path, json={"description": "billing"}, headers=headers)
    await client.get(f"{path}/secret", headers=headers)
    await client.post(f"{path}/rotate-secret", headers=headers)
    await client.delete(path, headers=headers)
    new_key = (
        await client.post(
            "/v1/keys", json={"name": "ci", "scopes": ["events:read"]}, headers=headers
        )
    ).json()
    source = {"name": "gh", "verification": {"scheme": "github"}, "event_type": "push"}
    made = (await client.post("/v1/sources", json=source, headers=headers)).json()
    await client.post("/v1/event-types", json={"name": "invoice.paid"}, headers=headers)
    found = await entries(client, key)
    actions = [e["action"] for e in found]
    assert actions == [
        "event_type.create",
        "source.create",
        "key.create",
        "endpoint.delete",
        "endpoint.secret.rotate",
        "endpoint.secret.reveal",
        "endpoint.update",
        "endpoint.create",
    ]
    update = found[6]
    assert (update["before"]["description"], update["after"]["description"]) == ("", "billing")
    assert update["resource_type"] == "endpoint"
    assert update["resource_id"] == endpoint_id
    assert update["actor_key_prefix"] in key
    assert (update["user_agent"], update["request_id"]) == ("ops-script/1.0", "req-42")
    assert update["client_ip"]
    text = json.dumps(found)
    for secret in (
        key,
        created["secret"],
        new_key["key"],
        made["secret"],
        made["source"]["trigger_path"],
    ):
        assert secret not in text
    assert [e["seq"] for e in found] == list(range(8, 0, -1))


async def test_filters_pages_and_tenants(client, database_url):
    key = await make_key(database_url)
    other = await make_key(database_url, tenant="other")
    ids = []
    for _ in range(5):
        ids.append(
            (await client.post("/v1/endpoints", json=HOOK, headers=auth(key))).json()["endpoint"][
                "id"
            ]
        )
    await client.patch(f"/v1/endpoints/{ids[0]}", json={"description": "x"}, headers=auth(key))
    assert [e["action"] for e in await entries(client, key, action="endpoint.update")] == [
        "endpoint.update"
    ]
    one = await entries(client, key, resource_type="endpoint", resource_id=ids[0])
    assert [e["action"] for e in one] == ["endpoint.update", "endpoint.create"]
    first = await client.get("/v1/audit-logs", params={"limit": 4}, headers=auth(key))
    cursor = first.json()["pagination"]["next_cursor"]
    rest = await entries(client, key, limit=4, cursor=cursor)
    assert [e["seq"] for e in first.json()["entries"] + rest] == [6, 5, 4, 3, 2, 1]
    assert await entries(client, other) == []
    assert await entries(client, key, since="2999-01-01T00:00:00Z") == []
    for bad in ({"cursor": "!!"}, {"action": "DROP TABLE"}, {"actor_key_id": "nope"}):
        response = await client.get("/v1/audit-logs", params=bad, headers=auth(key))
        assert response.status_code == 400, bad
    reader = await make_key(database_url, scopes=["events:read"])
    assert (await client.get("/v1/audit-logs", headers=auth(reader))).status_code == 403


async def test_a_refused_change_records_nothing(client, database_url):
    key = await make_key(database_url)
    source = {"name": "gh", "verification": {"scheme": "github"}, "event_type": "push"}
    await client.post("/v1/sources", json=source, headers=auth(key))
    again = await client.post("/v1/sources", json=source, headers=auth(key))
    assert again.status_code == 409
    bad = await client.post("/v1/endpoints", json={"url": "ftp://x"}, headers=auth(key))
    assert bad.status_code == 400
    assert [e["action"] for e in await entries(client, key)] == ["source.create"]


async def test_the_chain_verifies_and_an_edit_or_a_deletion_is_found(client, database_url):
    key = await make_key(database_url)
    created = await asyncio.gather(
        *(client.post("/v1/endpoints", json=HOOK, headers=auth(key)) for _ in range(20))
    )
    assert {c.status_code for c in created} == {201}
    ok = verify(database_url)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "20 entries" in ok.stdout
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE audit_logs SET after = '{}' WHERE seq = 7")
    edited = verify(database_url, "--tenant", "acme")
    assert edited.returncode == 1
    assert "seq 7" in edited.stdout
    with psycopg.connect(database_url, autocommit=True) as conn:
        # A careful forger makes row 7 consistent with itself again...
        conn.execute("UPDATE audit_logs SET after = NULL WHERE seq = 7")
        conn.execute(
            "UPDATE audit_logs SET hash = sha256(prev_hash || eventgate_audit_content(audit_logs))"
            " WHERE seq = 7"
        )
        forged = verify(database_url)  # ...but row 8 no longer links to it
        assert forged.returncode == 1
        assert "seq 8" in forged.stdout
        conn.execute("DELETE FROM audit_logs WHERE seq = 12")
    broken = verify(database_url)
    assert broken.returncode == 1
    assert "seq 8" in broken.stdout


async def test_retention_trims_old_entries_behind_a_checkpoint(client, database_url):
    from db import audit

    key = await make_key(database_url)
    for _ in range(10):
        await client.post("/v1/endpoints", json=HOOK, headers=auth(key))
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE audit_logs SET created_at = created_at - interval '40 days' WHERE seq <= 6"
        )
        assert await audit.trim(conn, 30) == 6
        assert await audit.trim(conn, 30) == 0
    assert [e["seq"] for e in await entries(client, key)] == [10, 9, 8, 7]
    kept = verify(database_url)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "4 entries" in kept.stdout
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM audit_logs WHERE seq = 7")
    gap = verify(database_url)
    assert gap.returncode == 1
    assert "seq 8" in gap.stdout


async def test_a_refused_real_key_is_recorded_for_its_tenant_at_most_per_the_limit(
    client, database_url
):
    key = await make_key(database_url)
    victim = await make_key(database_url)
    wrong = victim[:-4] + ("AAAA" if not victim.endswith("AAAA") else "BBBB")
    answers = [await client.get("/v1/inbox", headers=auth(wrong)) for _ in range(15)]
    assert [a.status_code for a in answers].count(401) == 10  # then 429: the prefix's limit
    refused = await entries(client, key, action="auth.refused")
    assert len(refused) == 10
    assert refused[0]["after"] == {"reason": "the API key is not valid"}
    assert refused[0]["actor_key_id"] is None
    assert wrong not in json.dumps(refused)
    assert victim not in json.dumps(refused)


async def test_a_rate_limit_block_is_recorded_once_a_minute_per_key(client, database_url):
    from app.rate_limits.admission import blocks

    key = await make_key(database_url)
    limited = await make_key(database_url)
    key_id = (await client.get("/v1/keys", headers=auth(key))).json()["keys"][-1]["id"]
    rules = {"overrides": [{"route": "GET /v1/inbox", "per_minute": 2}]}
    put = await client.put(f"/v1/keys/{key_id}/rate-limits", json=rules, headers=auth(key))
    assert put.status_code == 200, put.text
    blocks._last.clear()
    statuses = [
        (await client.get("/v1/inbox", headers=auth(limited))).status_code for _ in range(6)
    ]
    assert statuses.count(429) == 4
    found = await entries(client, key, action="rate_limit.block")
    assert len(found) == 1
    assert (found[0]["resource_id"], found[0]["actor_key_id"]) == (key_id, key_id)
    assert found[0]["after"]["policy"].startswith("route-")


async def test_a_truncated_tail_or_a_rewrite_forward_is_found(client, database_url):
    key = await make_key(database_url)
    for _ in range(6):
        await client.post("/v1/endpoints", json=HOOK, headers=auth(key))
    with psycopg.connect(database_url, autocommit=True) as conn:
        # Edit a middle row and recompute every hash from there on, leaving the head alone.
        conn.execute("UPDATE audit_logs SET after = NULL WHERE seq = 3")
        for seq in range(3, 7):
            conn.execute(
                "UPDATE audit_logs a SET prev_hash = (SELECT hash FROM audit_logs WHERE seq = %s),"
                " hash = sha256((SELECT hash FROM audit_logs WHERE seq = %s)"
                " || eventgate_audit_content(a)) WHERE seq = %s",
                (seq - 1, seq - 1, seq),
            )
    rewritten = verify(database_url)
    assert rewritten.returncode == 1
    assert "seq 6" in rewritten.stdout
    assert "the last entry's hash is not the one its head holds" in rewritten.stdout
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM audit_logs WHERE seq = 6")  # the newest entry
    cut = verify(database_url)
    assert cut.returncode == 1, cut.stdout
    assert "the chain ends at seq 5, its head is at seq 6" in cut.stdout


async def test_a_saved_head_catches_a_rewrite_of_table_and_head_together(
    client, database_url, tmp_path
):
    key = await make_key(database_url)
    for _ in range(5):
        await client.post("/v1/endpoints", json=HOOK, headers=auth(key))
    env = {**os.environ, "EVENTGATE_DATABASE_URL": database_url}
    printed = subprocess.run(
        [sys.executable, "-m", "cli", "audit", "head"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    (line,) = printed.stdout.splitlines()
    name, seq, digest = line.split("\t")
    assert (name, seq, len(digest)) == ("acme", "5", 64)
    saved = tmp_path / "heads.tsv"
    saved.write_text(printed.stdout)
    await client.post("/v1/endpoints", json=HOOK, headers=auth(key))  # the chain grows: fine
    assert verify(database_url, "--expect-head", str(saved)).returncode == 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        # A forger with the whole database rewrites row 5 and moves the head along.
        conn.execute("UPDATE audit_logs SET after = NULL WHERE seq >= 5")
        for seq in (5, 6):
            conn.execute(
                "UPDATE audit_logs a SET hash = sha256(prev_hash || eventgate_audit_content(a))"
                " WHERE seq = %s",
                (seq,),
            )
            conn.execute(
                "UPDATE audit_logs SET prev_hash = (SELECT hash FROM audit_logs WHERE seq = %s)"
                " WHERE seq = %s",
                (seq, seq + 1),
            )
        conn.execute("UPDATE audit_heads SET hash = (SELECT hash FROM audit_logs WHERE seq = 6)")
    assert verify(database_url).returncode == 0  # undetectable from inside the database
    caught = verify(database_url, "--expect-head", str(saved))
    assert caught.returncode == 1
    assert "seq 5\tsaved head: another hash" in caught.stdout
    malformed = tmp_path / "bad.tsv"
    malformed.write_text("acme 5\n")
    refused = verify(database_url, "--expect-head", str(malformed))
    assert refused.returncode == 1
    assert "bad.tsv:1: expected" in refused.stderr
