"""The transformation routes: versions kept and audited, code checked before it is kept, tests
that run a sample in the real sandbox (errors with their line), hostile input refused cleanly,
other tenants' owners unseen; and a source's handler applied before its event is stored."""

from __future__ import annotations

import asyncio
import json

import psycopg

from tests.helpers import add_endpoint, auth, make_key

RENAME = """function handler(webhook) {
  webhook.event_type = "stripe." + webhook.payload.type;
  webhook.payload = { amount: webhook.payload.data.amount, currency: "eur" };
  webhook.cancel = webhook.payload.amount === 0;
  return webhook;
}"""


async def make_source(client, key: str) -> dict:
    body = {"name": "stripe", "verification": {"scheme": "none"}, "event_type": "payment"}
    created = await client.post("/v1/sources", json=body, headers=auth(key))
    assert created.status_code == 201, created.text
    return created.json()["source"]


def stored_events(database_url: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT event_type, payload FROM events ORDER BY id").fetchall()


async def test_versions_are_kept_audited_and_listed_newest_first(client, database_url, receiver):
    key = await make_key(database_url)
    endpoint = await add_endpoint(client, key, receiver, "versions")
    path = f"/v1/endpoints/{endpoint['id']}/transformation"
    assert (await client.get(path, headers=auth(key))).json() == {"code": None, "version": 0}
    for n in range(3):
        code = f"function handler(w) {{ w.payload = {n}; return w; }}"
        answer = await client.put(path, json={"code": code}, headers=auth(key))
        assert answer.json() == {"code": code, "version": n + 1}
    assert (await client.delete(path, headers=auth(key))).json()["version"] == 4
    first = (await client.get(f"{path}/versions?limit=3", headers=auth(key))).json()
    assert [v["version"] for v in first["versions"]] == [4, 3, 2]
    assert first["versions"][0]["code"] is None
    cursor = first["pagination"]["next_cursor"]
    rest = await client.get(f"{path}/versions?limit=3&cursor={cursor}", headers=auth(key))
    assert [v["version"] for v in rest.json()["versions"]] == [1]
    assert rest.json()["pagination"]["next_cursor"] is None
    audit = (await client.get("/v1/audit-logs", headers=auth(key))).json()["entries"]
    actions = [e["action"] for e in audit if e["resource_id"] == endpoint["id"]]
    assert actions.count("endpoint.transformation.updated") == 3
    assert actions.count("endpoint.transformation.removed") == 1
    assert "function handler" not in json.dumps(audit)  # a digest, not the code


async def test_code_that_does_not_load_is_refused_with_its_line_and_changes_nothing(
    client, database_url, receiver
):
    key = await make_key(database_url)
    endpoint = await add_endpoint(client, key, receiver, "refused")
    path = f"/v1/endpoints/{endpoint['id']}/transformation"
    for code, line in (
        ("function handler(w) {\n  return w +;\n}", 2),
        ("const handler = 5;", None),
        ("\n\nthrow new Error('at load');", 3),
        ("function handler(w) { return w }\nwhile (true) {}", 2),
    ):
        answer = await client.put(path, json={"code": code}, headers=auth(key))
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["details"] == {"field": "code", "line": line}
    for body in ({"code": ""}, {"code": "x" * 70_000}, {"code": 5}, {"code": "a", "more": 1}):
        answer = await client.put(path, json=body, headers=auth(key))
        assert answer.status_code == 400, answer.text
    assert (await client.get(path, headers=auth(key))).json()["version"] == 0


async def test_a_test_run_shows_the_result_or_the_error_and_its_line(
    client, database_url, receiver
):
    key = await make_key(database_url)
    endpoint = await add_endpoint(client, key, receiver, "tested")
    path = f"/v1/endpoints/{endpoint['id']}/transformation/test"
    nothing = await client.post(path, json={"payload": {}}, headers=auth(key))
    assert nothing.status_code == 400  # no stored code and none given
    code = """function handler(w) {
  w.headers["X-Kind"] = w.event_type;
  w.url = w.url + "?from=test";
  w.payload = { total: w.payload.payload.items.reduce((a, b) => a + b, 0) };
  return w;
}"""
    sample = {"payload": {"items": [1, 2, 3]}, "event_type": "cart.done", "code": code}
    answer = (await client.post(path, json=sample, headers=auth(key))).json()
    assert answer["ok"] is True
    assert answer["result"] == {
        "method": "POST",
        "url": receiver.endpoint_url("tested") + "?from=test",
        "headers": {"x-kind": "cart.done"},
        "payload": {"total": 6},
    }
    failing = {"payload": {}, "code": "function handler(w) {\n\n  return w.payload.x.y;\n}"}
    answer = (await client.post(path, json=failing, headers=auth(key))).json()
    assert answer == {
        "ok": False,
        "cancelled": False,
        "result": None,
        "error": "TypeError: cannot read property 'y' of undefined",
        "line": 3,
    }
    for refused, reason in (
        ("w.url = 'http://elsewhere.example/'", "only the path and query"),
        ("w.headers['webhook-signature'] = 'v1,forged'", "cannot be set"),
        ("w.headers['Host'] = 'x'", "cannot be set"),
        ("w.headers['X-Bad'] = 'a\\nb'", "not a valid header"),
        ("w.method = 'DELETE'", "method must be one of"),
    ):
        code = f"function handler(w) {{ {refused}; return w; }}"
        body = {"payload": {}, "code": code}
        answer = (await client.post(path, json=body, headers=auth(key))).json()
        assert answer["ok"] is False, refused
        assert reason in answer["error"], (refused, answer)


async def test_another_tenants_owner_and_hostile_paths_are_not_found_or_refused(
    client, database_url, receiver
):
    mine = await make_key(database_url)
    theirs = await make_key(database_url, tenant="other")
    endpoint = await add_endpoint(client, theirs, receiver, "theirs")
    path = f"/v1/endpoints/{endpoint['id']}/transformation"
    code = {"code": "function handler(w) { return w; }"}
    assert (await client.get(path, headers=auth(mine))).status_code == 404
    assert (await client.put(path, json=code, headers=auth(mine))).status_code == 404
    assert (await client.delete(path, headers=auth(mine))).status_code == 404
    test = await client.post(f"{path}/test", json={"payload": {}, **code}, headers=auth(mine))
    assert test.status_code == 404
    versions = await client.get(f"{path}/versions?cursor=bm90LWEtbnVtYmVy", headers=auth(theirs))
    assert versions.status_code == 400
    bad_id = await client.get("/v1/endpoints/not-an-id/transformation", headers=auth(mine))
    assert bad_id.status_code == 400
    assert (await client.get(path, headers=auth(theirs))).json()["version"] == 0


async def test_fifty_concurrent_puts_keep_one_numbered_version_each(client, database_url, receiver):
    key = await make_key(database_url)
    endpoint = await add_endpoint(client, key, receiver, "raced")
    path = f"/v1/endpoints/{endpoint['id']}/transformation"
    answers = await asyncio.gather(
        *(
            client.put(
                path,
                json={"code": f"function handler(w) {{ return w; }} // {n}"},
                headers=auth(key),
            )
            for n in range(50)
        )
    )
    # The key's rate limit may refuse some (429); every accepted one has its own number.
    kept = [a.json()["version"] for a in answers if a.status_code == 200]
    assert {a.status_code for a in answers} <= {200, 429}
    assert len(kept) >= 40
    assert sorted(kept) == list(range(1, len(kept) + 1))


async def test_a_source_handler_renames_reshapes_or_cancels_before_the_event_is_stored(
    client, database_url
):
    key = await make_key(database_url)
    source = await make_source(client, key)
    path = f"/v1/sources/{source['id']}/transformation"
    answer = await client.put(path, json={"code": RENAME}, headers=auth(key))
    assert answer.status_code == 200, answer.text
    trigger = source["trigger_path"]

    paid = {"type": "charge.succeeded", "data": {"amount": 990}}
    accepted = await client.post(trigger, json=paid)
    assert accepted.status_code == 202, accepted.text
    free = {"type": "charge.succeeded", "data": {"amount": 0}}
    cancelled = await client.post(trigger, json=free)
    assert (cancelled.status_code, cancelled.json()["cancelled"]) == (200, True)
    assert cancelled.json()["event_id"] is None
    assert stored_events(database_url) == [
        ("stripe.charge.succeeded", {"amount": 990, "currency": "eur"})
    ]

    tested = await client.post(f"{path}/test", json={"payload": paid}, headers=auth(key))
    assert tested.json()["result"] == {
        "event_type": "stripe.charge.succeeded",
        "payload": {"amount": 990, "currency": "eur"},
    }

    # A handler that fails, or names a reserved type, refuses the request (422) and the
    # refusal is kept for the source's owner; nothing is stored.
    for code in (
        "function handler(w) { return w.payload.nope.x; }",
        "function handler(w) { w.event_type = 'eventgate.fake'; return w; }",
    ):
        await client.put(path, json={"code": code}, headers=auth(key))
        refused = await client.post(trigger, json=paid)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "transformation_failed"
    assert len(stored_events(database_url)) == 1
    rejections = await client.get(f"/v1/sources/{source['id']}/rejections", headers=auth(key))
    assert [r["status_code"] for r in rejections.json()["rejections"]] == [422, 422]
