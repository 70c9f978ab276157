"""Single sign-on with OpenID Connect, against a real provider (panva's oidc-provider) on
another loopback address and a real `eventgate serve`: who may sign in, with which role, and
every way a callback can be wrong."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from aiohttp import web

from core.settings import Settings
from tests.app.console.helpers import csrf_of, make_user
from tests.helpers import free_port, serve_process
from tests.oidc import console_env, oidc_provider, provider_callback

CALLBACK = "/console/sign-in/oidc/callback"


@contextlib.contextmanager
def console_with_provider(database_url: str, **extra_env: str) -> Iterator[str]:
    """A provider, and a console that signs in with it; yields the console's base URL."""
    port = free_port()
    with (
        oidc_provider(f"http://127.0.0.1:{port}{CALLBACK}") as issuer,
        serve_process(database_url, port, **console_env(issuer), **extra_env) as (_, base),
    ):
        yield base


def browser(base: str) -> httpx.AsyncClient:
    """A browser of its own (cookies per site), redirects seen one by one."""
    return httpx.AsyncClient(base_url=base, timeout=30, follow_redirects=False)


async def test_a_person_signs_in_with_the_provider_and_acts_with_their_role(database_url):
    await make_user(database_url, "vera@example.com", role="viewer")
    with console_with_provider(database_url) as base:
        async with browser(base) as client:
            form = await client.get("/console/sign-in")
            assert "Sign in with Test SSO" in form.text
            callback = await provider_callback(client, base, "Vera@Example.com")
            answer = await client.get(callback)
            assert answer.status_code == 200, answer.text
            assert 'http-equiv="refresh"' in answer.text
            assert "eventgate_session" in client.cookies
            overview = await client.get("/console/")
            assert overview.status_code == 200
            assert "vera@example.com" in overview.text
            # A viewer reads but never writes, whichever way they signed in.
            refused = await client.post(
                "/console/endpoints",
                data={"csrf_token": csrf_of(overview.text), "url": "https://example.com/h"},
            )
            assert refused.status_code == 403
            assert "your role lacks" in refused.text
            # The provider's code works once.
            again = await client.get(callback)
            assert again.status_code == 401
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = await conn.execute(
            "SELECT actor_email FROM audit_logs WHERE action = 'console.signed_in'"
        )
        assert await rows.fetchall() == [("vera@example.com",)]


@pytest.mark.parametrize(
    ("login", "why"),
    [
        ("nobody@example.com", "has no console account here"),
        ("unverified:vera@example.com", "has not verified your email"),
    ],
)
async def test_the_provider_vouching_is_not_enough_without_a_console_user(database_url, login, why):
    await make_user(database_url, "vera@example.com", role="viewer")
    with console_with_provider(database_url) as base:
        async with browser(base) as client:
            answer = await client.get(await provider_callback(client, base, login))
            assert answer.status_code == 401
            assert why in answer.text
            assert "eventgate_session" not in client.cookies
            assert (await client.get("/console/")).status_code == 303


async def test_a_callback_that_was_not_started_in_this_browser_opens_nothing(database_url):
    await make_user(database_url, "vera@example.com")
    with console_with_provider(database_url) as base:
        async with browser(base) as victim, browser(base) as attacker:
            # An attacker's own, valid callback, given to another browser (login CSRF).
            callback = await provider_callback(attacker, base, "vera@example.com")
            assert (await victim.get(callback)).status_code == 401
            assert "eventgate_session" not in victim.cookies
            # This browser's login, but another state or none, or the provider's error.
            for query in ("?code=abc&state=wrong", "?code=abc", "?error=access_denied"):
                await victim.get("/console/sign-in/oidc")
                refused = await victim.get(f"{CALLBACK}{query}")
                assert refused.status_code == 401, query
            state = state_of(await victim.get("/console/sign-in/oidc"))
            said = await victim.get(f"{CALLBACK}?error=<b>call+us</b>&state={state}")
            assert said.status_code == 401
            assert "did not sign you in (refused)" in said.text
            assert "call us" not in said.text


def state_of(leaving: httpx.Response) -> str:
    """The state a login sends to the provider."""
    assert leaving.status_code == 303
    return leaving.headers["location"].split("state=", 1)[1].split("&", 1)[0]


async def test_hostile_codes_are_refused_without_an_error(database_url):
    with console_with_provider(database_url) as base:
        async with browser(base) as client:
            for code in ("garbage", "%00nul", "x" * 3000, "%ff%fe", "a%0d%0aSet-Cookie:+x=1"):
                state = state_of(await client.get("/console/sign-in/oidc"))
                refused = await client.get(f"{CALLBACK}?code={code}&state={state}")
                assert refused.status_code in (400, 401), (code, refused.text[:300])
                assert "eventgate_session" not in client.cookies


async def test_a_provider_that_does_not_answer_is_said_plainly(database_url):
    closed = f"http://127.0.0.1:{free_port()}"
    env = {"EVENTGATE_OIDC_ISSUER": closed, "EVENTGATE_OIDC_CLIENT_ID": "eventgate"}
    with serve_process(database_url, **env) as (_, base):
        async with browser(base) as client:
            answer = await client.get("/console/sign-in/oidc")
            assert answer.status_code == 502
            assert "could not be reached" in answer.text
            assert "csrf_token" in answer.text  # the sign-in form is still there


async def test_a_flood_of_sign_ins_while_the_provider_fails_asks_it_once(database_url):
    hits = []

    async def failing(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(status=500)

    provider = web.Application()
    provider.router.add_get("/{tail:.*}", failing)
    runner = web.AppRunner(provider, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    issuer = f"http://127.0.0.1:{runner.addresses[0][1]}"
    env = {"EVENTGATE_OIDC_ISSUER": issuer, "EVENTGATE_OIDC_CLIENT_ID": "eventgate"}
    try:
        with serve_process(database_url, **env) as (_, base):
            async with browser(base) as client:
                answers = await asyncio.gather(
                    *(client.get("/console/sign-in/oidc") for _ in range(50))
                )
    finally:
        await runner.cleanup()
    assert {answer.status_code for answer in answers} == {502}
    assert hits == ["/.well-known/openid-configuration"]


async def test_without_a_provider_there_is_no_single_sign_on(database_url):
    with serve_process(database_url) as (_, base):
        async with browser(base) as client:
            assert "/console/sign-in/oidc" not in (await client.get("/console/sign-in")).text
            assert (await client.get("/console/sign-in/oidc")).status_code == 404
            assert (await client.get(f"{CALLBACK}?code=a&state=b")).status_code == 401


def test_the_issuer_and_client_go_together():
    with pytest.raises(SystemExit, match="go together"):
        Settings.from_env({"EVENTGATE_OIDC_ISSUER": "https://login.example.com"})
    with pytest.raises(SystemExit, match="https:// URL"):
        Settings.from_env(
            {"EVENTGATE_OIDC_ISSUER": "file:///etc/passwd", "EVENTGATE_OIDC_CLIENT_ID": "x"}
        )
    settings = Settings.from_env(
        {
            "EVENTGATE_OIDC_ISSUER": "https://login.example.com",
            "EVENTGATE_OIDC_CLIENT_ID": "eventgate",
            "EVENTGATE_OIDC_CLIENT_SECRET": "hush",
        }
    )
    assert "hush" not in repr(settings)
