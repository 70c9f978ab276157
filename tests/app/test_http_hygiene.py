"""HTTP hygiene: security headers on every answer, no server banner, CORS only when configured,
gzip for large answers."""

from __future__ import annotations

import httpx
import msgspec
from litestar.testing import AsyncTestClient

from app.http_hygiene import add_security_headers
from app.main import create_app
from app.response_headers import set_headers
from tests.helpers import api_process, auth, make_key


async def test_every_answer_carries_the_security_headers_and_no_banner(database_url):
    key = await make_key(database_url)
    with api_process(database_url) as base:
        answers = [
            httpx.get(f"{base}/health/live"),
            httpx.get(f"{base}/nowhere"),
            httpx.get(f"{base}/v1/inbox", headers=auth(key)),
            httpx.get(f"{base}/v1/inbox"),
            httpx.get(f"{base}/docs"),
        ]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert "server" not in answer.headers
        assert "strict-transport-security" not in answer.headers  # plain http here


async def test_cors_is_off_by_default_and_follows_the_configured_origins(settings):
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key",
    }
    async with AsyncTestClient(app=create_app(settings)) as closed:
        answer = await closed.options("/v1/events", headers=preflight)
        assert "access-control-allow-origin" not in answer.headers
    configured = msgspec.structs.replace(settings, cors_origins=("https://app.example",))
    async with AsyncTestClient(app=create_app(configured)) as open_:
        allowed = await open_.options("/v1/events", headers=preflight)
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        other = await open_.options(
            "/v1/events", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert other.headers.get("access-control-allow-origin") != "https://evil.example"


async def test_large_answers_are_gzipped_when_asked(client):
    raw = await client.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip"
    assert raw.json()["openapi"].startswith("3.")
    small = await client.get("/health/live", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers


def test_headers_set_on_the_way_out_replace_rather_than_repeat():
    start = {"type": "http.response.start", "status": 200, "headers": ((b"x-request-id", b"a"),)}
    set_headers(start, ((b"x-request-id", b"b"), (b"ratelimit", b'"minute";r=1;t=2')))
    set_headers(start, ((b"ratelimit", b'"minute";r=0;t=1'),))
    add_security_headers(start, {"type": "http", "path": "/v1/inbox", "scheme": "https"})
    add_security_headers(start, {"type": "http", "path": "/v1/inbox", "scheme": "https"})
    names = [name for name, _ in start["headers"]]
    assert len(names) == len(set(names)), names
    headers = dict(start["headers"])
    assert headers[b"x-request-id"] == b"b"
    assert headers[b"ratelimit"] == b'"minute";r=0;t=1'
    assert headers[b"strict-transport-security"].startswith(b"max-age=")
    assert headers[b"x-frame-options"] == b"DENY"
