"""/v1/sources: create, read, change, delete; write-only secrets; tokens; tenant isolation."""

from __future__ import annotations

import json

import psycopg

from tests.helpers import auth, make_key

NEW = {"name": "stripe", "verification": {"scheme": "stripe"}, "event_type_pointer": "/type"}


async def create(client, key: str, **fields) -> dict:
    response = await client.post(
        "/v1/sources", json={**NEW, "secret": "whsec_from_stripe", **fields}, headers=auth(key)
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_source_lifecycle_keeps_its_secret_write_only(client, database_url):
    key = await make_key(database_url)
    created = await create(client, key)
    source = created["source"]
    assert created["secret"] == "whsec_from_stripe"
    assert source["trigger_path"].startswith("/v1/triggers/src_")
    assert len(source["trigger_path"]) == len("/v1/triggers/src_") + 32
    path = f"/v1/sources/{source['id']}"
    listed = await client.get("/v1/sources", headers=auth(key))
    fetched = await client.get(path, headers=auth(key))
    for shown in (listed.text, fetched.text):
        assert "whsec_from_stripe" not in shown
    assert listed.json()["sources"] == [fetched.json()]
    secret = await client.get(f"{path}/secret", headers=auth(key))
    assert secret.json() == {"secret": "whsec_from_stripe"}
    patch = {"name": "stripe-live", "event_type": "stripe.event", "keep_headers": ["User-Agent"]}
    changed = await client.patch(path, json=patch, headers=auth(key))
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["name"], body["event_type"], body["event_type_pointer"]) == (
        "stripe-live",
        "stripe.event",
        None,
    )
    assert body["keep_headers"] == ["user-agent"]
    rotated = await client.post(f"{path}/rotate-token", headers=auth(key))
    assert rotated.json()["trigger_path"] != source["trigger_path"]
    old = await client.post(source["trigger_path"], json={"type": "x"})
    assert old.status_code == 404
    assert (await client.delete(path, headers=auth(key))).status_code == 200
    assert (await client.get(path, headers=auth(key))).status_code == 404
    gone = await client.post(rotated.json()["trigger_path"], json={"type": "x"})
    assert gone.status_code == 404


async def test_secrets_are_generated_or_required_as_the_provider_works(client, database_url):
    key = await make_key(database_url)
    github = await client.post(
        "/v1/sources",
        json={"name": "gh", "verification": {"scheme": "github"}, "event_type": "push"},
        headers=auth(key),
    )
    assert len(github.json()["secret"]) == 64
    standard = await client.post(
        "/v1/sources",
        json={"name": "sw", "verification": {"scheme": "standard-webhooks"}, "event_type": "x"},
        headers=auth(key),
    )
    assert standard.json()["secret"].startswith("whsec_")
    for scheme in ("stripe", "shopify", "slack"):
        body = {"name": scheme, "verification": {"scheme": scheme}, "event_type": "x"}
        refused = await client.post("/v1/sources", json=body, headers=auth(key))
        assert refused.status_code == 400
        assert refused.json()["error"]["details"] == {"field": "secret"}
    # Switching scheme keeps a secret that fits, and makes one where none was held.
    none = await client.post(
        "/v1/sources",
        json={"name": "open", "verification": {"scheme": "none"}, "event_type": "x"},
        headers=auth(key),
    )
    assert none.json()["secret"] is None
    path = f"/v1/sources/{none.json()['source']['id']}"
    await client.patch(path, json={"verification": {"scheme": "github"}}, headers=auth(key))
    assert len((await client.get(f"{path}/secret", headers=auth(key))).json()["secret"]) == 64


async def test_bad_sources_are_refused_and_change_nothing(client, database_url):
    key = await make_key(database_url)
    await create(client, key)
    refused = [
        ({"name": "two-rules", "event_type": "x"}, 400),  # with the pointer from NEW
        ({"name": "no-rule", "event_type_pointer": None}, 400),
        ({"name": "stripe"}, 409),
        ({"name": "x", "keep_headers": ["Authorization"]}, 400),
        ({"name": "x", "verification": {"scheme": "standard-webhooks"}}, 400),
        ({"name": "x", "verification": {"scheme": "hmac"}}, 400),
        ({"name": "x", "verification": {"scheme": "md5"}}, 400),
        ({"name": "x", "verification": {"scheme": "hmac", "header": "X", "algorithm": "md5"}}, 400),
        ({"name": "x", "event_type_pointer": "type"}, 400),
        ({"name": "has space"}, 400),
        ({"name": "x", "secret": "with space"}, 400),
        ({"name": "x", "unknown": 1}, 400),
    ]
    for fields, status in refused:
        body = {**NEW, "secret": "whsec_x", **fields}
        body = {k: v for k, v in body.items() if v is not None}
        response = await client.post("/v1/sources", json=body, headers=auth(key))
        assert response.status_code == status, (fields, response.text)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM sources").fetchone() == (1,)


async def test_another_tenant_can_neither_see_nor_change_a_source(client, database_url):
    owner = await make_key(database_url)
    stranger = await make_key(database_url, tenant="other")
    source = (await create(client, owner))["source"]
    path = f"/v1/sources/{source['id']}"
    attempts = [
        client.get(path, headers=auth(stranger)),
        client.get(f"{path}/secret", headers=auth(stranger)),
        client.get(f"{path}/rejections", headers=auth(stranger)),
        client.patch(path, json={"name": "mine"}, headers=auth(stranger)),
        client.post(f"{path}/rotate-token", headers=auth(stranger)),
        client.delete(path, headers=auth(stranger)),
    ]
    for attempt in attempts:
        assert (await attempt).status_code == 404
    assert (await client.get("/v1/sources", headers=auth(stranger))).json()["sources"] == []
    unchanged = await client.get(path, headers=auth(owner))
    assert unchanged.json() == source
    assert "mine" not in json.dumps(unchanged.json())


async def test_sources_need_their_scope(client, database_url):
    key = await make_key(database_url, scopes=["events:read"])
    response = await client.get("/v1/sources", headers=auth(key))
    assert response.status_code == 403
    assert response.json()["error"]["details"] == {"required_scope": "sources:manage"}
