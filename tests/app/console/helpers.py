"""Signing in to the console over the in-process client, and reading its pages."""

from __future__ import annotations

import re
import uuid
from typing import Any

import psycopg

from app.console import people
from db import console_users, tenants

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


async def sign_in(client: Any, key: str) -> str:
    """Sign in with `key`; the session's CSRF token (the client keeps the cookie)."""
    form = await client.get("/console/sign-in")
    answer = await client.post(
        "/console/sign-in", data={"csrf_token": csrf_of(form.text), "key": key}
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/console/"
    page = await client.get("/console/")
    assert page.status_code == 200, page.text
    return csrf_of(page.text)


async def post_form(client: Any, path: str, csrf: str, **fields: Any) -> Any:
    """Send a console form, as the browser would."""
    return await client.post(path, data={"csrf_token": csrf, **fields})


PASSWORD = "correct horse battery staple"


async def make_user(
    database_url: str,
    email: str,
    role: str = "admin",
    tenant: str = "acme",
    password: str = PASSWORD,
) -> str:
    """A console user of the tenant (made as the operator's command makes one); its id."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        row, _ = await tenants.create_or_get(conn, tenant)
        password_hash = await people.hash_password(password)
        user = await people.create_user(conn, row.id, email, password_hash, role)
    return str(user.id)


async def sign_in_as(
    client: Any, email: str, password: str = PASSWORD, code: str = "", **headers: str
) -> Any:
    """Send the sign-in form as a person; the answer (303 to the console when it worked)."""
    form = await client.get("/console/sign-in", headers=headers)
    fields = {"csrf_token": csrf_of(form.text), "email": email, "password": password, "code": code}
    return await client.post("/console/sign-in", data=fields, headers=headers)


async def signed_in_as(client: Any, email: str, password: str = PASSWORD, code: str = "") -> str:
    """Sign in as a person; the session's CSRF token."""
    answer = await sign_in_as(client, email, password, code)
    assert answer.status_code == 303, answer.text
    page = await client.get("/console/")
    assert page.status_code == 200, page.text
    return csrf_of(page.text)


async def turn_on_totp(database_url: str, user_id: str, tenant: str = "acme") -> str:
    """Give a user a second factor as enrolment does (the secret sealed); the secret."""
    secret = people.new_totp_secret()
    uid = uuid.UUID(user_id)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        row, _ = await tenants.create_or_get(conn, tenant)
        await console_users.set_totp(conn, row.id, uid, console_users.seal_totp(secret, uid))
    return secret
