"""Hostile query strings, path values and floods against every page: a clear 4xx page or a
normal one, never a 500, and nothing changed by a refused form."""

from __future__ import annotations

import asyncio

import msgspec
import psycopg
from litestar.testing import AsyncTestClient

from app.main import create_app
from tests.app.console.helpers import csrf_of, post_form, sign_in
from tests.app.console.test_isolation import PARAM, page_routes
from tests.helpers import auth, early_in_a_minute, make_key

HOSTILE_VALUES = [
    "%00",
    "%ff%fe",
    "a%00b",
    "9" * 400,
    "-1",
    "%27%20OR%201=1--",
    "..%2F..%2Fetc%2Fpasswd",
    "%F0%9F%92%A9",
    "1e999999",
]
QUERY_NAMES = [
    "cursor",
    "status",
    "endpoint_id",
    "event_id",
    "source",
    "event_type",
    "channel",
    "since",
    "until",
    "action",
    "resource_type",
    "notice",
]


async def test_hostile_query_strings_and_paths_never_answer_500(client, database_url):
    await sign_in(client, await make_key(database_url))
    gets = [template for method, template in page_routes(client.app, "/console") if method == "GET"]
    for template in gets:
        for value in HOSTILE_VALUES:
            path = PARAM.sub(value, template)
            query = "&".join(f"{name}={value}" for name in QUERY_NAMES)
            for target in (path, f"{PARAM.sub('x', template)}?{query}"):
                answer = await client.get(target)
                assert answer.status_code < 500, (target, answer.status_code, answer.text[:300])
                # A page answers with a page; a path no route matches is the API's 404.
                page = answer.headers["content-type"].startswith("text/html")
                assert page or answer.status_code == 404, target


async def test_fifty_concurrent_rotations_from_the_console_leave_one_secret(client, database_url):
    key = await make_key(database_url)
    csrf = await sign_in(client, key)
    created = await client.post(
        "/v1/endpoints", json={"url": "https://a.example/h"}, headers=auth(key)
    )
    endpoint_id = created.json()["endpoint"]["id"]
    path = f"/console/endpoints/{endpoint_id}/rotate-secret"
    answers = await asyncio.gather(*(post_form(client, path, csrf) for _ in range(50)))
    assert {a.status_code for a in answers} <= {303, 409}
    secret = (await client.get(f"/v1/endpoints/{endpoint_id}/secret", headers=auth(key))).json()
    assert secret["secret"].startswith("whsec_")
    with psycopg.connect(database_url) as conn:
        rotations = conn.execute(
            "SELECT count(*) FROM audit_logs WHERE action = 'endpoint.secret.rotate'"
        ).fetchone()
    assert rotations == (sum(a.status_code == 303 for a in answers),)


async def test_guessing_keys_at_the_sign_in_form_is_limited(settings):
    limited = msgspec.structs.replace(settings, anonymous_per_minute=3)
    async with AsyncTestClient(app=create_app(limited)) as client:
        form = await client.get("/console/sign-in")
        await early_in_a_minute()  # five tries in one window, not three in one and two in the next
        statuses = []
        for n in range(5):
            answer = await client.post(
                "/console/sign-in", data={"csrf_token": csrf_of(form.text), "key": f"eg_x{n}_y"}
            )
            statuses.append(answer.status_code)
    assert statuses[:3] == [401, 401, 401]
    assert statuses[3:] == [429, 429]
