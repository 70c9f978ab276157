"""Hostile input: nothing a client sends makes the server fetch anything, stall, race or answer
500. Each test is one reproducer from an attack on `eventgate dev`."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
from collections.abc import AsyncIterator

import msgspec
import psycopg
import pytest
from aiohttp import web
from litestar.testing import AsyncTestClient

from app.main import create_app
from core.destinations import is_public
from tests.helpers import auth, event_body, make_key

OVERFLOW_ID = "ffffffff-ffff-7fff-bfff-ffffffffffff"  # a UUIDv7 whose time no datetime holds
JSON = {"content-type": "application/json"}


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["request_id"] == response.headers["x-request-id"]
    return error


async def count(database_url: str, table: str) -> int:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(f"SELECT count(*) FROM {table}")  # fixed names only
        return (await cur.fetchone())[0]


@contextlib.asynccontextmanager
async def counting_server() -> AsyncIterator[tuple[str, list[str]]]:
    """A loopback HTTP server that records every request of any method."""
    seen: list[str] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.path}")
        return web.json_response({"type": "string", "const": "secret content"})

    web_app = web.Application()
    web_app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    finally:
        await runner.cleanup()


async def test_a_schema_never_makes_the_server_fetch_or_open_anything(client, database_url):
    key = await make_key(database_url)
    async with counting_server() as (base, seen):
        for ref in (f"{base}/secret", "file:///etc/passwd", "other.json"):
            response = await client.post(
                "/v1/event-types",
                json={"name": "x", "schema": {"$ref": ref}},
                headers=auth(key),
            )
            error = assert_error(response, 400)
            assert error["details"]["field"] == "schema"
            assert "root:" not in error["message"]
            assert "secret content" not in error["message"]
        assert seen == []
    assert await count(database_url, "event_types") == 0


@pytest.mark.parametrize("ref", ["#/$defs/nope", "#/properties/missing"])
async def test_a_reference_that_does_not_resolve_is_refused_at_registration(
    client, database_url, ref
):
    key = await make_key(database_url)
    schema = {"type": "object", "properties": {"a": {"$ref": ref}}}
    response = await client.post(
        "/v1/event-types", json={"name": "x", "schema": schema}, headers=auth(key)
    )
    assert_error(response, 400)


async def test_a_self_reference_is_harmless(client, database_url):
    key = await make_key(database_url)
    schema = {"type": "object", "properties": {"child": {"$ref": "#"}}}
    created = await client.post(
        "/v1/event-types", json={"name": "tree", "schema": schema}, headers=auth(key)
    )
    assert created.status_code == 201
    nested = {"child": {"child": {"child": {}}}}
    body = event_body(event_type="tree", payload=nested)
    assert (await client.post("/v1/events", json=body, headers=auth(key))).status_code == 201
    bad = event_body(event_type="tree", payload={"child": {"child": 5}})
    assert_error(await client.post("/v1/events", json=bad, headers=auth(key)), 400)


async def test_a_catastrophic_pattern_runs_in_linear_time(client, database_url):
    key = await make_key(database_url)
    schema = {"type": "object", "properties": {"s": {"pattern": "^(a+)+$"}}}
    await client.post("/v1/event-types", json={"name": "re", "schema": schema}, headers=auth(key))
    # Exponential for a backtracking engine: 2^5000 steps. Linear here, so it simply answers.
    body = event_body(event_type="re", payload={"s": "a" * 5000 + "!"})
    error = assert_error(await client.post("/v1/events", json=body, headers=auth(key)), 400)
    assert error["details"]["field"] == "payload.s"
    good = event_body(event_type="re", payload={"s": "a" * 5000})
    assert (await client.post("/v1/events", json=good, headers=auth(key))).status_code == 201


async def test_a_pattern_the_linear_engine_cannot_run_is_refused(client, database_url):
    key = await make_key(database_url)
    schema = {"properties": {"s": {"pattern": "(a)\\1"}}}  # a backreference
    response = await client.post(
        "/v1/event-types", json={"name": "x", "schema": schema}, headers=auth(key)
    )
    assert_error(response, 400)


NUL_BODIES = [
    ("POST", "/v1/keys", {"name": "a\u0000b", "scopes": ["admin"]}),
    ("POST", "/v1/keys", {"name": "a", "scopes": ["admin"], "metadata": {"k\u0000": 1}}),
    ("POST", "/v1/endpoints", {"url": "http://127.0.0.1/\u0000"}),
    ("POST", "/v1/endpoints", {"url": "http://127.0.0.1/", "description": "\u0000"}),
    ("POST", "/v1/endpoints", {"url": "http://127.0.0.1/", "metadata": {"a": "\u0000"}}),
    ("POST", "/v1/event-types", {"name": "x", "description": "\u0000"}),
    ("POST", "/v1/event-types", {"name": "x", "schema": {"description": "\u0000"}}),
    ("POST", "/v1/events", event_body(source="a\u0000")),
]


@pytest.mark.parametrize(("method", "path", "body"), NUL_BODIES)
async def test_nul_in_a_body_is_a_400_naming_the_field(client, database_url, method, path, body):
    key = await make_key(database_url)
    error = assert_error(await client.request(method, path, json=body, headers=auth(key)), 400)
    assert "NUL" in error["message"]


async def test_nul_in_a_patch_path_query_or_cursor_is_a_400(client, database_url):
    key = await make_key(database_url)
    created = await client.post(
        "/v1/endpoints", json={"url": "http://127.0.0.1/"}, headers=auth(key)
    )
    endpoint = created.json()["endpoint"]["id"]
    for body in ({"url": "http://127.0.0.1/\u0000"}, {"metadata": {"\u0000": 1}}):
        patched = await client.patch(f"/v1/endpoints/{endpoint}", json=body, headers=auth(key))
        assert_error(patched, 400)
    nul_cursor = base64.urlsafe_b64encode(b"a\x00b").decode()
    for path in (
        "/v1/event-types/a%00b",
        "/v1/inbox?source=a%00b",
        "/v1/inbox?event_type=a%00b",
        f"/v1/event-types?cursor={nul_cursor}",
    ):
        assert_error(await client.get(path, headers=auth(key)), 400)
    patch = await client.patch(
        "/v1/event-types/a%00b", json={"description": "x"}, headers=auth(key)
    )
    assert_error(patch, 400)


async def test_a_body_that_is_not_utf8_is_a_400(client, database_url):
    key = await make_key(database_url)
    raw = b'{"source": "\xff\xfe", "event_type": "a", "payload": {}}'
    for path in ("/v1/events", "/v1/keys", "/v1/endpoints", "/v1/event-types"):
        response = await client.post(path, content=raw, headers={**auth(key), **JSON})
        assert_error(response, 400)


@pytest.mark.parametrize("depth", [65, 1000, 100_000])
async def test_deep_nesting_is_a_400_on_every_body(client, database_url, depth):
    key = await make_key(database_url)
    deep = "[" * depth + "]" * depth
    bodies = {
        "/v1/events": f'{{"source": "a", "event_type": "a", "payload": {{"x": {deep}}}}}',
        "/v1/keys": f'{{"name": "a", "scopes": ["admin"], "metadata": {{"x": {deep}}}}}',
        "/v1/endpoints": f'{{"url": "http://127.0.0.1/", "metadata": {{"x": {deep}}}}}',
        "/v1/event-types": f'{{"name": "a", "schema": {{"x": {deep}}}}}',
    }
    for path, body in bodies.items():
        response = await client.post(path, content=body.encode(), headers={**auth(key), **JSON})
        error = assert_error(response, 400)
        assert "64 levels" in error["message"] or "JSON" in error["message"]
    assert await count(database_url, "events") == 0


async def test_nesting_up_to_the_limit_is_accepted(client, database_url):
    key = await make_key(database_url)
    depth = 62  # the body and the payload are two levels of the 64
    payload = "[" * depth + "]" * depth
    body = f'{{"source": "a", "event_type": "a", "payload": {{"x": {payload}}}}}'
    response = await client.post("/v1/events", content=body.encode(), headers={**auth(key), **JSON})
    assert response.status_code == 201, response.text


BY_ID_ROUTES = [
    ("GET", "/v1/events/{id}"),
    ("GET", "/v1/events/{id}/deliveries"),
    ("POST", "/v1/events/{id}/ack"),
    ("GET", "/v1/keys/{id}"),
    ("POST", "/v1/keys/{id}/rotate"),
    ("DELETE", "/v1/keys/{id}"),
    ("GET", "/v1/endpoints/{id}"),
    ("PATCH", "/v1/endpoints/{id}"),
    ("DELETE", "/v1/endpoints/{id}"),
    ("GET", "/v1/endpoints/{id}/secret"),
    ("POST", "/v1/endpoints/{id}/rotate-secret"),
    ("POST", "/v1/endpoints/{id}/disable"),
    ("POST", "/v1/endpoints/{id}/enable"),
    ("POST", "/v1/endpoints/{id}/test"),
    ("GET", "/v1/deliveries/{id}"),
    ("POST", "/v1/deliveries/{id}/retry"),
]


async def test_an_id_whose_time_overflows_is_not_found_anywhere(client, database_url):
    key = await make_key(database_url)
    for method, path in BY_ID_ROUTES:
        url = path.format(id=OVERFLOW_ID)
        body = {} if method == "PATCH" else None
        response = await client.request(method, url, json=body, headers=auth(key))
        assert_error(response, 404)
    deleted = await client.delete(f"/v1/events/{OVERFLOW_ID}", headers=auth(key))
    assert deleted.status_code == 200
    assert deleted.json()["deleted"] is False
    cursor = base64.urlsafe_b64encode(bytes.fromhex(OVERFLOW_ID.replace("-", ""))).decode()
    for listing in ("/v1/inbox", "/v1/keys", "/v1/endpoints", "/v1/deliveries"):
        assert_error(await client.get(f"{listing}?cursor={cursor}", headers=auth(key)), 400)


async def test_options_needs_no_key_and_trace_is_405_with_allow(client):
    for path in ("/v1/keys", "/v1/keys/abc", "/v1/endpoints", "/v1/endpoints/abc", "/v1/events"):
        response = await client.options(path)
        assert response.status_code == 204, (path, response.text)
        assert "OPTIONS" in response.headers["allow"]
    traced = await client.request("TRACE", "/v1/keys")
    assert_error(traced, 405)
    assert set(traced.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


async def test_booleans_are_strict(client, database_url):
    key = await make_key(database_url)
    await client.post("/v1/event-types", json={"name": "x"}, headers=auth(key))
    for archived in (0, 1, "true", "false", None):
        response = await client.patch(
            "/v1/event-types/x", json={"archived": archived}, headers=auth(key)
        )
        error = assert_error(response, 400)
        assert error["details"]["field"] == "archived"
    created = await client.post(
        "/v1/endpoints", json={"url": "http://127.0.0.1/", "ordered": 1}, headers=auth(key)
    )
    assert_error(created, 400)
    limited = await client.post(
        "/v1/endpoints",
        json={"url": "http://127.0.0.1/", "rate_limit_per_s": "5"},
        headers=auth(key),
    )
    assert_error(limited, 400)
    assert (await client.get("/v1/event-types/x", headers=auth(key))).json()["archived"] is False


async def test_fifty_concurrent_rotations_give_exactly_one_working_key(
    client, database_url, monkeypatch
):
    from app.keys import services

    hashed = []  # each replacement's argon2 hash: only the rotation that wins needs one
    new_secret = services.new_secret

    async def counted() -> services.NewSecret:
        hashed.append(await new_secret())
        return hashed[-1]

    admin = await make_key(database_url, rate_limit_tier="unlimited")  # 50 at once: no burst
    victim = await make_key(database_url, scopes=["events:read"])
    monkeypatch.setattr(services, "new_secret", counted)
    keys = (await client.get("/v1/keys", headers=auth(admin))).json()["keys"]
    victim_id = next(k["id"] for k in keys if k["scopes"] == ["events:read"])
    rotations = await asyncio.gather(
        *(
            client.post(
                f"/v1/keys/{victim_id}/rotate",
                json={"grace_period_seconds": 3600},
                headers=auth(admin),
            )
            for _ in range(50)
        )
    )
    codes = sorted(r.status_code for r in rotations)
    assert codes == [201] + [409] * 49
    assert len(hashed) == 1  # the 49 refused took turns and saw the key rotated first
    (winner,) = [r.json()["key"] for r in rotations if r.status_code == 201]
    assert (await client.get("/v1/inbox", headers=auth(winner))).status_code == 200
    assert (await client.get("/v1/inbox", headers=auth(victim))).status_code == 200  # grace


async def test_a_rotation_racing_a_revocation_never_leaves_a_working_key(client, database_url):
    admin = await make_key(database_url)
    for _ in range(5):
        victim = await make_key(database_url, scopes=["events:read"])
        listed = (await client.get("/v1/keys?limit=100", headers=auth(admin))).json()["keys"]
        victim_id = next(k["id"] for k in listed if k["prefix"] == victim.split("_")[1])
        rotate = client.post(
            f"/v1/keys/{victim_id}/rotate", json={"grace_period_seconds": 3600}, headers=auth(admin)
        )
        revoke = client.delete(f"/v1/keys/{victim_id}", headers=auth(admin))
        rotated, revoked = await asyncio.gather(rotate, revoke)
        assert revoked.status_code == 200
        assert rotated.status_code in (201, 409)
        candidates = [victim] + ([rotated.json()["key"]] if rotated.status_code == 201 else [])
        for key in candidates:
            assert (await client.get("/v1/inbox", headers=auth(key))).status_code == 401


@pytest.mark.parametrize(
    "address",
    [
        "::7f00:1",
        "::ffff:127.0.0.1",
        "::ffff:0:127.0.0.1",
        "::ffff:0:a00:1",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::808:808",
        "2002:7f00:1::",
        "2002:a00:1::",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    ],
)
async def test_ipv6_forms_that_embed_a_private_ipv4_are_refused(settings, database_url, address):
    assert not is_public(ipaddress.ip_address(address))
    key = await make_key(database_url)
    private = msgspec.structs.replace(settings, allow_private_destinations=False)
    async with AsyncTestClient(app=create_app(private)) as strict_client:
        response = await strict_client.post(
            "/v1/endpoints", json={"url": f"http://[{address}]:8080/hook"}, headers=auth(key)
        )
    error = assert_error(response, 400)
    assert error["details"]["field"] == "url"


def test_public_ipv6_and_their_public_embeddings_stay_allowed():
    for address in ("2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::"):
        assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("raw", [b"null", b"false", b"0", b'"x"', b"[]"])
async def test_a_body_that_is_not_an_object_is_a_400(client, database_url, raw):
    key = await make_key(database_url)
    for path in ("/v1/events", "/v1/events/batch", "/v1/keys", "/v1/endpoints", "/v1/event-types"):
        response = await client.post(path, content=raw, headers={**auth(key), **JSON})
        assert_error(response, 400)


async def test_query_numbers_and_yes_no_are_as_strict_as_bodies(client, database_url):
    key = await make_key(database_url, rate_limit_tier="unlimited")
    lists = ["/v1/inbox", "/v1/keys", "/v1/endpoints", "/v1/deliveries", "/v1/event-types"]
    lists += ["/v1/sources", "/v1/audit-logs", "/v1/request-logs"]
    for path in lists:
        for bad in ("1.0", "1e2", " 1", "0x10", "true", "\uff11"):
            answer = await client.get(path, params={"limit": bad}, headers=auth(key))
            error = assert_error(answer, 400)
            assert error["details"]["field"] == "limit", (path, bad)
        assert (await client.get(path, params={"limit": "5"}, headers=auth(key))).status_code == 200
    for bad in ("1", "0", "yes", "True", ""):
        answer = await client.get(
            "/v1/event-types", params={"include_archived": bad}, headers=auth(key)
        )
        assert assert_error(answer, 400)["details"]["field"] == "include_archived"
    for good in ("true", "false"):
        answer = await client.get(
            "/v1/event-types", params={"include_archived": good}, headers=auth(key)
        )
        assert answer.status_code == 200
    status = await client.get("/v1/request-logs", params={"status": "200.0"}, headers=auth(key))
    assert assert_error(status, 400)["details"]["field"] == "status"


async def test_checking_queries_keeps_nothing_per_request(client, database_url):
    from app.query import _KINDS

    key = await make_key(database_url, rate_limit_tier="unlimited")
    for path in ("/v1/endpoints", "/v1/event-types", "/health", "/console/sign-in"):
        assert (await client.get(path, headers=auth(key))).status_code < 500
    known = len(_KINDS)
    for _ in range(20):
        for path in ("/v1/endpoints", "/v1/event-types", "/health", "/console/sign-in"):
            await client.get(path, params={"limit": "5"}, headers=auth(key))
    assert len(_KINDS) == known  # one entry per route, not per request
