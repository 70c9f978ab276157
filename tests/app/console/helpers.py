"""Signing in to the console over the in-process client, and reading its pages."""

from __future__ import annotations

import re
from typing import Any

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
