"""No console or portal page is reachable without a session, and none shows another
tenant's (or another channel's) data: every route is walked, found from the app itself."""

from __future__ import annotations

import re
import uuid

import psycopg
import pytest

from tests.app.console.helpers import csrf_of, make_user, post_form, sign_in, signed_in_as
from tests.app.console.test_pages import seed
from tests.app.console.test_portal import endpoint_for, portal_for
from tests.helpers import auth, make_key

PARAM = re.compile(r"\{(\w+):\w+\}")
PUBLIC = {
    "/console/sign-in",
    "/console/invitations/{token:str}",  # 404 unless the link is open (tested apart)
    "/console/sign-in/oidc",  # single sign-on (test_oidc.py)
    "/console/sign-in/oidc/callback",
    "/console/static/{file_path:path}",
}


def page_routes(app, prefix: str) -> list[tuple[str, str]]:
    """(method, path template) of every page under `prefix`."""
    return sorted(
        (method, route.path)
        for route in app.routes
        if route.path.startswith(prefix) and route.path not in PUBLIC
        for method in getattr(route, "methods", ())
        if method in ("GET", "POST")
    )


def fill(template: str, ids: dict[str, str]) -> str:
    """The template with every id parameter set (event types by name)."""
    return PARAM.sub(lambda m: ids.get(m.group(1), ids["id"]), template)


def ids_of(seeded: dict[str, str], delivery_id: str) -> dict[str, str]:
    return {
        "id": seeded["endpoint"],
        "endpoint_id": seeded["endpoint"],
        "event_id": seeded["event"],
        "source_id": seeded["source"],
        "delivery_id": delivery_id,
        "key_id": str(uuid.uuid4()),
        "name": "invoice.paid",
        "user_id": seeded["user"],
        "session_id": seeded["session"],
    }


async def other_tenant(client, database_url) -> tuple[dict[str, str], list[str]]:
    """Tenant B's ids and the strings that would betray its data."""
    key_b = await make_key(database_url, tenant="globex")
    seeded = await seed(client, key_b)
    seeded["user"] = await make_user(database_url, "betty@globex.example", tenant="globex")
    await signed_in_as(client, "betty@globex.example")  # a live session of tenant B's
    seeded["session"] = str(await betty_session(database_url))
    client.cookies.clear()
    listed = await client.get(
        f"/v1/deliveries?endpoint_id={seeded['endpoint']}", headers=auth(key_b)
    )
    delivery_id = listed.json()["deliveries"][0]["id"]
    ids = ids_of(seeded, delivery_id)
    secret = (
        await client.get(f"/v1/endpoints/{seeded['endpoint']}/secret", headers=auth(key_b))
    ).json()
    return ids, [
        seeded["endpoint"],
        seeded["event"],
        delivery_id,
        secret["secret"],
        "hooks.example",
        "betty@globex.example",
    ]


async def betty_session(database_url: str) -> uuid.UUID | None:
    """Tenant B's person's live session, if it still is."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        found = await conn.execute(
            "SELECT s.id FROM console_sessions s JOIN console_users u"
            " ON u.tenant_id = s.tenant_id AND u.id = s.user_id"
            " WHERE u.email = 'betty@globex.example' AND u.role = 'admin'"
            " AND u.disabled_at IS NULL"
        )
        row = await found.fetchone()
    return row[0] if row else None


async def test_no_console_page_opens_without_a_session(client, database_url):
    ids, betrayals = await other_tenant(client, database_url)
    routes = page_routes(client.app, "/console")
    assert len(routes) > 25
    for method, template in routes:
        path = fill(template, ids)
        answer = await client.request(
            method, path, data={"csrf_token": "x"} if method == "POST" else None
        )
        assert answer.status_code == 303, (method, path, answer.status_code)
        assert answer.headers["location"] == "/console/sign-in"
        assert not any(b in answer.text for b in betrayals), (method, path)


@pytest.mark.parametrize("signed_in_with", ["key", "password"])
async def test_no_console_page_shows_another_tenants_data(client, database_url, signed_in_with):
    ids, betrayals = await other_tenant(client, database_url)
    if signed_in_with == "key":
        csrf = await sign_in(client, await make_key(database_url, tenant="acme"))
    else:
        await make_user(database_url, "ada@acme.example", tenant="acme")
        csrf = await signed_in_as(client, "ada@acme.example")
    for method, template in page_routes(client.app, "/console"):
        path = fill(template, ids)
        if method == "POST":
            answer = await post_form(
                client, path, csrf, url="https://a.example/", name="x.y", role="viewer"
            )
        else:
            answer = await client.get(path)
        assert not any(b in answer.text for b in betrayals), (method, path)
        assert answer.status_code != 500, (method, path)
        if "{" in template and method == "GET" and "/new" not in template:
            assert answer.status_code == 404, (method, path, answer.status_code)
    # Tenant B's person kept their role and their session through every POST.
    assert str(await betty_session(database_url)) == ids["session_id"]


@pytest.mark.parametrize("channel_of_b", ["cust-2"])
async def test_no_portal_page_shows_another_channels_or_tenants_data(
    client, database_url, channel_of_b
):
    ids, betrayals = await other_tenant(client, database_url)
    key_a = await make_key(database_url, tenant="acme")
    other_channel = await endpoint_for(client, key_a, channel_of_b, "https://neighbour.example/h")
    portal = await portal_for(client, key_a, "cust-1")
    csrf = csrf_of((await client.get(f"{portal}/endpoints/new")).text)
    for target in (ids, {**ids, "id": other_channel, "endpoint_id": other_channel}):
        for method, template in page_routes(client.app, "/portal"):
            path = fill(template, {**target, "token": portal.rsplit("/", 1)[1]})
            if method == "POST":
                answer = await post_form(client, path, csrf, url="https://a.example/")
            else:
                answer = await client.get(path)
            leaked = [*betrayals, "neighbour.example", other_channel]
            assert not any(b in answer.text for b in leaked), (method, path)
            if "endpoint_id" in template or "delivery_id" in template:
                assert answer.status_code == 404, (method, path, answer.status_code)
        answer = await client.get(f"{portal}/deliveries?endpoint_id={target['endpoint_id']}")
        assert answer.status_code == 404


async def test_no_portal_page_opens_without_a_link(client, database_url):
    ids, betrayals = await other_tenant(client, database_url)
    for method, template in page_routes(client.app, "/portal"):
        path = fill(template, {**ids, "token": "egp-not-a-link"})
        answer = await client.request(method, path)
        assert answer.status_code == 404, (method, path)
        assert not any(b in answer.text for b in betrayals)
