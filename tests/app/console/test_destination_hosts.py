"""Hosts no resolver can take (empty labels, characters IDNA refuses) are a 400 naming the
url field on every way an endpoint is made or changed: API POST and PATCH, the console's
form and the portal's, with private destinations allowed or not."""

from __future__ import annotations

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from app.main import create_app
from tests.app.console.helpers import csrf_of, post_form, sign_in
from tests.app.console.test_portal import endpoint_for, portal_for
from tests.helpers import auth, make_key

HOSTS = [
    "a..b",
    ".",
    "..",
    "a\u3002\u3002b",
    "\u3002",
    "a\u008cb",
    "exa mple.com",
    "x" * 64 + ".com",
]


@pytest.mark.parametrize("allow_private", [True, False])
async def test_unencodable_hosts_are_a_400_on_the_api(settings, database_url, allow_private):
    key = await make_key(database_url)
    strictness = msgspec.structs.replace(settings, allow_private_destinations=allow_private)
    async with AsyncTestClient(app=create_app(strictness)) as client:
        endpoint_id = await endpoint_for(client, key, "c", "https://ok.example/h")
        for host in HOSTS:
            url = f"http://{host}/hook"
            created = await client.post("/v1/endpoints", json={"url": url}, headers=auth(key))
            assert created.status_code == 400, (host, created.text)
            assert created.json()["error"]["details"]["field"] == "url"
            patched = await client.patch(
                f"/v1/endpoints/{endpoint_id}", json={"url": url}, headers=auth(key)
            )
            assert patched.status_code == 400, (host, patched.text)
            assert patched.json()["error"]["details"]["field"] == "url"
        listed = (await client.get("/v1/endpoints", headers=auth(key))).json()["endpoints"]
        assert [e["url"] for e in listed] == ["https://ok.example/h"]


async def test_unencodable_hosts_are_refused_by_the_console_and_portal_forms(client, database_url):
    key = await make_key(database_url)
    endpoint_id = await endpoint_for(client, key, "cust-1", "https://ok.example/h")
    portal = await portal_for(client, key, "cust-1")
    portal_csrf = csrf_of((await client.get(f"{portal}/endpoints/new")).text)
    csrf = await sign_in(client, key)
    for host in HOSTS:
        url = f"http://{host}/hook"
        for path, token in (
            ("/console/endpoints", csrf),
            (f"/console/endpoints/{endpoint_id}", csrf),
            (f"{portal}/endpoints", portal_csrf),
            (f"{portal}/endpoints/{endpoint_id}", portal_csrf),
        ):
            answer = await post_form(client, path, token, url=url)
            assert answer.status_code == 400, (path, host, answer.status_code)
            assert "url" in answer.text
    listed = (await client.get("/v1/endpoints", headers=auth(key))).json()["endpoints"]
    assert [e["url"] for e in listed] == ["https://ok.example/h"]
