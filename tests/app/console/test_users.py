"""People, not keys: console users with roles, one-time invitations, a TOTP second factor,
sessions a person lists and ends, and the person named in the audit log."""

from __future__ import annotations

import re
import time

import msgspec
import psycopg
import pyotp
import pytest
from litestar.testing import AsyncTestClient

from app.main import create_app
from tests.app.console.helpers import (
    PASSWORD,
    csrf_of,
    make_user,
    post_form,
    sign_in_as,
    signed_in_as,
)
from tests.helpers import auth, make_key

LINK = re.compile(r'id="invitation-link"[^>]*>([^<]+)<')
SECRET = re.compile(r'id="totp-secret"[^>]*>([A-Z2-7]{32})<')
SESSION_ROW = re.compile(r"/account/sessions/([0-9a-f-]{36})/revoke")


async def invite(client, csrf: str, email: str, role: str) -> str:
    """An admin's invitation; the link's path."""
    page = await post_form(client, "/console/users/invitations", csrf, email=email, role=role)
    assert page.status_code == 200, page.text
    return LINK.search(page.text).group(1).split("testserver.local", 1)[-1]


async def accept(client, path: str, password: str = PASSWORD, confirm: str | None = None):
    """Open the link and choose a password."""
    page = await client.get(path)
    assert page.status_code == 200, page.text
    fields = {"password": password, "confirm": password if confirm is None else confirm}
    return await post_form(client, path, csrf_of(page.text), **fields)


async def test_an_invited_viewer_joins_once_reads_every_page_and_is_refused_writes(
    client, database_url, settings
):
    await make_user(database_url, "ada@example.com")
    csrf = await signed_in_as(client, "ada@example.com")
    path = await invite(client, csrf, "Grace@Example.com", "viewer")
    await client.post("/console/sign-out", data={"csrf_token": csrf})

    async with AsyncTestClient(app=create_app(settings)) as grace:
        grace.follow_redirects = False
        short = await accept(grace, path, "short", "short")
        assert short.status_code == 400
        assert "at least 12 characters" in short.text
        differ = await accept(grace, path, PASSWORD, PASSWORD + "!")
        assert differ.status_code == 400
        assert "differ" in differ.text
        joined = await accept(grace, path)
        assert joined.status_code == 303, joined.text
        home = await grace.get("/console/")
        assert "grace@example.com" in home.text
        assert ">Keys<" not in home.text
        assert ">Users<" not in home.text
        assert (await grace.get("/console/endpoints")).status_code == 200
        assert (await grace.get("/console/audit")).status_code == 200
        assert (await grace.get("/console/keys")).status_code == 403
        refused = await post_form(
            grace, "/console/endpoints", csrf_of(home.text), url="https://a.example/h"
        )
        assert refused.status_code == 403
        assert "your role lacks" in refused.text

    async with AsyncTestClient(app=create_app(settings)) as again:
        again.follow_redirects = False
        assert (await again.get(path)).status_code == 404  # used: the link is spent
        assert "used or has expired" in (await again.get(path)).text


async def test_a_link_opened_in_two_browsers_adds_one_user(client, database_url, settings):
    await make_user(database_url, "ada@example.com")
    path = await invite(
        client, await signed_in_as(client, "ada@example.com"), "lin@example.com", "developer"
    )
    async with (
        AsyncTestClient(app=create_app(settings)) as a,
        AsyncTestClient(app=create_app(settings)) as b,
    ):
        a.follow_redirects = b.follow_redirects = False
        forms = [await a.get(path), await b.get(path)]
        answers = [
            await post_form(c, path, csrf_of(f.text), password=PASSWORD, confirm=PASSWORD)
            for c, f in zip((a, b), forms, strict=True)
        ]
    assert sorted(r.status_code for r in answers) == [303, 404]
    with psycopg.connect(database_url) as conn:
        count = "SELECT count(*) FROM console_users WHERE email = 'lin@example.com'"
        assert conn.execute(count).fetchone() == (1,)


async def test_a_developer_changes_endpoints_but_not_keys_or_users(client, database_url):
    await make_user(database_url, "dev@example.com", role="developer")
    csrf = await signed_in_as(client, "dev@example.com")
    made = await post_form(
        client, "/console/endpoints", csrf, url="https://a.example/h", kind="http"
    )
    assert made.status_code == 303, made.text
    assert (await client.get("/console/keys")).status_code == 403
    assert (await client.get("/console/users")).status_code == 403
    invite = await post_form(
        client, "/console/users/invitations", csrf, email="x@example.com", role="admin"
    )
    assert invite.status_code == 403


async def test_the_audit_log_names_the_person(client, database_url):
    key = await make_key(database_url)
    await make_user(database_url, "ada@example.com")
    csrf = await signed_in_as(client, "ada@example.com")
    await post_form(client, "/console/endpoints", csrf, url="https://a.example/h", kind="http")
    entries = (await client.get("/v1/audit-logs?action=endpoint.create", headers=auth(key))).json()
    [entry] = entries["entries"]
    assert entry["actor_email"] == "ada@example.com"
    assert entry["actor_key_id"] is None
    signed_in = (
        await client.get("/v1/audit-logs?action=console.signed_in", headers=auth(key))
    ).json()
    assert signed_in["entries"][0]["actor_email"] == "ada@example.com"
    page = (await client.get("/console/audit")).text
    assert "<td>ada@example.com</td>" in page
    endpoint_id = entry["resource_id"]
    assert f'href="/console/endpoints/{endpoint_id}"' in page  # entries link to what changed


async def test_an_admin_cannot_lock_themselves_out_and_disabling_ends_sessions(
    client, database_url, settings
):
    ada = await make_user(database_url, "ada@example.com")
    bob = await make_user(database_url, "bob@example.com", role="developer")
    csrf = await signed_in_as(client, "ada@example.com")
    async with AsyncTestClient(app=create_app(settings)) as bob_browser:
        bob_browser.follow_redirects = False
        await signed_in_as(bob_browser, "bob@example.com")
        self_demote = await post_form(client, f"/console/users/{ada}", csrf, role="viewer")
        assert self_demote.status_code == 403
        disabled = await post_form(client, f"/console/users/{bob}", csrf, action="disable")
        assert disabled.status_code == 303
        gone = await bob_browser.get("/console/")
        assert gone.headers["location"] == "/console/sign-in"
        refused = await sign_in_as(bob_browser, "bob@example.com")
        assert refused.status_code == 401
    promoted = await post_form(client, f"/console/users/{bob}", csrf, action="enable")
    assert promoted.status_code == 303
    assert "bob@example.com" in (await client.get("/console/users")).text


async def test_totp_is_asked_for_once_on_and_a_code_works_once(client, database_url, settings):
    await make_user(database_url, "ada@example.com")
    csrf = await signed_in_as(client, "ada@example.com")
    start = await post_form(client, "/console/account/totp/start", csrf)
    secret = SECRET.search(start.text).group(1)
    wrong = await post_form(client, "/console/account/totp", csrf, secret=secret, code="000000")
    assert wrong.status_code == 400
    assert "does not match" in wrong.text
    assert secret in wrong.text  # the enrolment goes on: the same key is shown again
    totp = pyotp.TOTP(secret)
    turned_on = await post_form(
        client, "/console/account/totp", csrf, secret=secret, code=totp.now()
    )
    assert turned_on.status_code == 303

    async with AsyncTestClient(app=create_app(settings)) as browser:
        browser.follow_redirects = False
        asked = await sign_in_as(browser, "ada@example.com")
        assert asked.status_code == 401
        assert "authenticator" in asked.text
        assert 'value="ada@example.com"' in asked.text  # what was typed is kept
        code = totp.at(time.time() + 30)  # the next step's: the enrolment spent this one
        assert (await sign_in_as(browser, "ada@example.com", code=code)).status_code == 303
    async with AsyncTestClient(app=create_app(settings)) as replay:
        replay.follow_redirects = False
        again = await sign_in_as(replay, "ada@example.com", code=code)
        assert again.status_code == 401
        assert "used already" in again.text


async def test_a_person_lists_their_sessions_and_ends_another(client, database_url, settings):
    await make_user(database_url, "ada@example.com")
    csrf = await signed_in_as(client, "ada@example.com")
    async with AsyncTestClient(app=create_app(settings)) as laptop:
        laptop.follow_redirects = False
        await signed_in_as(laptop, "ada@example.com")
        account = await client.get("/console/account")
        others = SESSION_ROW.findall(account.text)
        assert len(others) == 1  # the other session; this one is marked, not endable
        assert "this session" in account.text
        ended = await post_form(client, f"/console/account/sessions/{others[0]}/revoke", csrf)
        assert ended.status_code == 303
        assert (await laptop.get("/console/")).headers["location"] == "/console/sign-in"
    assert (await client.get("/console/")).status_code == 200


async def test_another_tenants_user_ids_and_sessions_are_not_found(client, database_url):
    other = await make_user(database_url, "eve@example.com", tenant="globex")
    await make_user(database_url, "ada@example.com")
    csrf = await signed_in_as(client, "ada@example.com")
    changed = await post_form(client, f"/console/users/{other}", csrf, action="disable")
    assert changed.status_code == 404
    ended = await post_form(client, f"/console/account/sessions/{other}/revoke", csrf)
    assert ended.status_code == 404
    assert "eve@example.com" not in (await client.get("/console/users")).text


@pytest.mark.parametrize(
    "email", ["", "no-at-sign", "a@b\x00c", "ä" * 300 + "@x.y", "a@" + "b" * 300]
)
async def test_hostile_emails_are_refused_in_plain_words(client, database_url, email):
    await make_user(database_url, "ada@example.com")
    csrf = await signed_in_as(client, "ada@example.com")
    answer = await post_form(client, "/console/users/invitations", csrf, email=email, role="viewer")
    assert answer.status_code == 400
    signed = await sign_in_as(client, email)
    assert signed.status_code in (400, 401)


async def test_api_key_sign_in_can_be_turned_off(settings, database_url):
    key = await make_key(database_url)
    no_keys = msgspec.structs.replace(settings, console_key_sign_in=False)
    async with AsyncTestClient(app=create_app(no_keys)) as browser:
        browser.follow_redirects = False
        form = await browser.get("/console/sign-in")
        assert 'name="key"' not in form.text
        answer = await browser.post(
            "/console/sign-in", data={"csrf_token": csrf_of(form.text), "key": key}
        )
        assert answer.status_code == 403
