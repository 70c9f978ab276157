"""Console sign-in: a key becomes a session cookie with the right attributes; sign-out and
key revocation end it; forms without the session's CSRF token change nothing."""

from __future__ import annotations

import psycopg
from litestar.testing import AsyncTestClient

from app.main import create_app
from tests.app.console.helpers import csrf_of, post_form, sign_in
from tests.helpers import auth, make_key


async def test_sign_in_sets_a_strict_http_only_expiring_cookie(client, database_url):
    key = await make_key(database_url)
    form = await client.get("/console/sign-in")
    answer = await client.post(
        "/console/sign-in", data={"csrf_token": csrf_of(form.text), "key": key}
    )
    assert answer.status_code == 303
    set_cookie = answer.headers["set-cookie"]
    assert set_cookie.startswith("eventgate_session=")
    for attribute in ("HttpOnly", "SameSite=strict", "Max-Age=28800", "Path=/console"):
        assert attribute in set_cookie
    assert "Secure" not in set_cookie  # plain http here; https adds it
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT token_hash FROM console_sessions").fetchone()
    token = set_cookie.split(";")[0].split("=", 1)[1]
    assert stored is not None
    assert token.encode() not in stored[0]


async def test_a_wrong_key_is_refused_with_the_form_again(client, database_url):
    await make_key(database_url)
    form = await client.get("/console/sign-in")
    answer = await client.post(
        "/console/sign-in", data={"csrf_token": csrf_of(form.text), "key": "eg_nope_nope"}
    )
    assert answer.status_code == 401
    assert "Sign in" in answer.text
    assert "eventgate_session" not in answer.headers.get("set-cookie", "")


async def test_sign_in_without_its_csrf_cookie_is_refused(client, database_url):
    key = await make_key(database_url)
    answer = await client.post("/console/sign-in", data={"csrf_token": "forged", "key": key})
    assert answer.status_code == 403
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM console_sessions").fetchone() == (0,)


async def test_pages_without_a_session_send_the_browser_to_sign_in(client):
    answer = await client.get("/console/")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in"


async def test_sign_out_ends_the_session_and_needs_the_csrf_token(client, database_url):
    key = await make_key(database_url)
    csrf = await sign_in(client, key)
    refused = await post_form(client, "/console/sign-out", "not-the-token")
    assert refused.status_code == 403
    assert (await client.get("/console/")).status_code == 200
    out = await post_form(client, "/console/sign-out", csrf)
    assert out.status_code == 303
    assert (await client.get("/console/")).status_code == 303


async def test_revoking_the_key_ends_its_sessions(client, database_url):
    admin = await make_key(database_url)
    key = await make_key(database_url)
    await sign_in(client, key)
    listed = (await client.get("/v1/keys", headers=auth(admin))).json()["keys"]
    key_id = next(k["id"] for k in listed if k["prefix"] in key)
    revoked = await client.delete(f"/v1/keys/{key_id}", headers=auth(admin))
    assert revoked.status_code == 200
    assert (await client.get("/console/")).status_code == 303


async def test_pages_carry_a_strict_content_security_policy(client, database_url):
    await sign_in(client, await make_key(database_url))
    page = await client.get("/console/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"


async def test_over_https_the_cookie_is_secure(settings, database_url):
    key = await make_key(database_url)
    async with AsyncTestClient(
        app=create_app(settings), base_url="https://testserver.local"
    ) as https:
        https.follow_redirects = False
        form = await https.get("/console/sign-in")
        assert "Secure" in form.headers["set-cookie"]
        answer = await https.post(
            "/console/sign-in", data={"csrf_token": csrf_of(form.text), "key": key}
        )
        assert answer.status_code == 303
        assert "Secure" in answer.headers["set-cookie"]
        assert "strict-transport-security" in answer.headers
