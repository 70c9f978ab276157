"""Revocation against concurrent rotation, on a real `eventgate serve` process: whatever the
interleaving, no key of a revoked chain works afterwards."""

from __future__ import annotations

import asyncio

import httpx
import psycopg

from tests.helpers import api_process, auth, make_key

TRIALS = 10


async def _revoked_chain(database_url: str, root_id: str) -> list[tuple[str, bool]]:
    """Every key of the chain that starts at root_id: (id, revoked)."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(
            """
            WITH RECURSIVE chain AS (
                SELECT id, replaced_by, revoked_at FROM api_keys WHERE id = %s
                UNION
                SELECT k.id, k.replaced_by, k.revoked_at FROM api_keys k
                JOIN chain c ON k.id = c.replaced_by
            ) SELECT id::text, revoked_at IS NOT NULL FROM chain
            """,
            (root_id,),
        )
        return await cur.fetchall()


async def _new_key(http: httpx.AsyncClient, admin: str) -> tuple[str, str]:
    created = await http.post(
        "/v1/keys", json={"name": "raced", "scopes": ["events:read"]}, headers=auth(admin)
    )
    assert created.status_code == 201, created.text
    return created.json()["id"], created.json()["key"]


async def test_a_rotation_racing_a_revocation_leaves_no_working_key(database_url):
    admin = await make_key(database_url)
    with api_process(database_url) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            for _ in range(TRIALS):
                key_id, _ = await _new_key(http, admin)
                rotated, revoked = await asyncio.gather(
                    http.post(f"/v1/keys/{key_id}/rotate", headers=auth(admin)),
                    http.delete(f"/v1/keys/{key_id}", headers=auth(admin)),
                )
                assert revoked.status_code == 200, revoked.text
                assert rotated.status_code in (201, 409), rotated.text
                chain = await _revoked_chain(database_url, key_id)
                assert all(is_revoked for _, is_revoked in chain), chain
                if rotated.status_code == 201:
                    replacement = rotated.json()["key"]
                    refused = await http.get("/v1/inbox", headers=auth(replacement))
                    assert refused.status_code == 401


async def test_rotating_the_replacement_while_the_original_is_revoked(database_url):
    admin = await make_key(database_url)
    with api_process(database_url) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            for _ in range(TRIALS):
                root_id, _ = await _new_key(http, admin)
                first = await http.post(f"/v1/keys/{root_id}/rotate", headers=auth(admin))
                assert first.status_code == 201
                rotated, revoked = await asyncio.gather(
                    http.post(f"/v1/keys/{first.json()['id']}/rotate", headers=auth(admin)),
                    http.delete(f"/v1/keys/{root_id}", headers=auth(admin)),
                )
                assert revoked.status_code == 200, revoked.text
                chain = await _revoked_chain(database_url, root_id)
                assert len(chain) >= 2
                assert all(is_revoked for _, is_revoked in chain), chain
                if rotated.status_code == 201:
                    latest = rotated.json()["key"]
                    assert (await http.get("/v1/inbox", headers=auth(latest))).status_code == 401
