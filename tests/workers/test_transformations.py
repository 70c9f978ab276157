"""Endpoint transformations against a real worker and receiver: the payload, headers, method
and path a handler chooses arrive signed over the transformed body; a cancel sends nothing; a
failing handler is an attempt's error and retries like any failure without touching the
endpoint's health; and hostile handlers are contained while a neighbour's deliveries go on."""

from __future__ import annotations

import psycopg

from tests.helpers import add_endpoint, auth, event_body, make_key, running_worker, wait_for

RESHAPE = """
// Slack wants {text}; the partner's API wants PUT on /slack-put?team=7
function handler(webhook) {
  const event = webhook.payload;
  webhook.payload = { text: `Invoice ${event.payload.n} is ${event.event_type}` };
  webhook.headers["X-Team"] = "seven";
  webhook.method = "PUT";
  webhook.url = webhook.url.replace("/reshaped", "/slack-put") + "?team=7";
  return webhook;
}
"""
CANCEL = "function handler(w) { w.cancel = w.payload.payload.n === 2; return w; }"
BROKEN = """function handler(webhook) {
  const missing = webhook.payload.nothing;
  return missing.deeper;
}"""


def delivery_rows(database_url: str, endpoint_id: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT d.status, d.attempts, d.last_error, e.consecutive_failures"
            " FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id"
            " WHERE d.endpoint_id = %s ORDER BY d.created_at, d.id",
            (endpoint_id,),
        ).fetchall()


def attempt_errors(database_url: str, endpoint_id: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT error FROM delivery_attempts WHERE endpoint_id = %s ORDER BY attempt",
            (endpoint_id,),
        ).fetchall()
    return [row[0] for row in rows]


async def set_code(client, key: str, endpoint_id: str, code: str) -> dict:
    path = f"/v1/endpoints/{endpoint_id}/transformation"
    answer = await client.put(path, json={"code": code}, headers=auth(key))
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_a_handler_reshapes_the_body_headers_method_and_path_and_the_signature_covers_it(
    client, database_url, receiver, worker_env, monkeypatch
):
    # One tenant's four transformed deliveries at once share one sandbox process; on a loaded
    # machine some wait past their turn and fail as busy, to be retried: leave them tries.
    monkeypatch.setenv("EVENTGATE_DELIVERY_RETRY_SCHEDULE", "0,0.2,0.2,0.5,1,1,1,1")
    key = await make_key(database_url)
    reshaped = await add_endpoint(client, key, receiver, "reshaped", event_types=["invoice.*"])
    receiver.secrets["slack-put"] = receiver.secrets["reshaped"]
    cancelling = await add_endpoint(client, key, receiver, "cancelling", event_types=["job.*"])
    assert (await set_code(client, key, reshaped["id"], RESHAPE))["version"] == 1
    await set_code(client, key, cancelling["id"], CANCEL)
    await client.post("/v1/events", json=event_body(payload={"n": 41}), headers=auth(key))
    for n in (1, 2, 3):
        body = event_body(event_type="job.done", payload={"n": n})
        await client.post("/v1/events", json=body, headers=auth(key))

    async with running_worker():
        await wait_for(
            lambda: len(receiver.at("slack-put")) == 1 and len(receiver.at("cancelling")) == 2,
            timeout=40,
        )
        await wait_for(lambda: delivery_rows(database_url, cancelling["id"])[1][0] == "cancelled")

    [arrived] = receiver.at("slack-put")
    assert arrived.body == {"text": "Invoice 41 is invoice.paid"}
    assert (arrived.method, arrived.query) == ("PUT", "team=7")
    assert arrived.headers["x-team"] == "seven"
    assert arrived.verified  # signed over the transformed body
    # Unordered endpoint: a try that found the sandbox busy is retried after a later event.
    assert sorted(r.body["payload"]["n"] for r in receiver.at("cancelling")) == [1, 3]
    assert [row[0] for row in delivery_rows(database_url, cancelling["id"])] == [
        "succeeded",
        "cancelled",
        "succeeded",
    ]
    assert receiver.at("reshaped") == []


async def test_a_failing_handler_is_the_attempts_error_and_retries_without_opening_the_circuit(
    client, database_url, receiver, worker_env
):
    key = await make_key(database_url)
    endpoint = await add_endpoint(client, key, receiver, "broken")
    await set_code(client, key, endpoint["id"], BROKEN)
    await client.post("/v1/events", json=event_body(), headers=auth(key))
    async with running_worker():
        await wait_for(lambda: delivery_rows(database_url, endpoint["id"])[0][0] == "dead")
    [(status, attempts, error, failures)] = delivery_rows(database_url, endpoint["id"])
    assert (status, attempts, failures) == ("dead", 3, 0)  # WORKER_ENV: three tries
    assert error == (
        "transformation failed: TypeError: cannot read property 'deeper' of undefined (line 3)"
    )
    assert receiver.at("broken") == []

    # Removing the transformation and recovering sends the event as it is.
    path = f"/v1/endpoints/{endpoint['id']}"
    removed = await client.delete(f"{path}/transformation", headers=auth(key))
    assert removed.json() == {"code": None, "version": 2}
    since = {"since": "2000-01-01T00:00:00Z"}
    assert (await client.post(f"{path}/recover", json=since, headers=auth(key))).status_code == 202
    async with running_worker():
        await wait_for(lambda: len(receiver.at("broken")) == 1)
    assert receiver.at("broken")[0].body["payload"] == {"n": 1}


HOSTILE = {
    "endless": ("function handler(w) { while (true) {} }", "more than its CPU time"),
    "memory": (
        # Asking for more than the limit at once: 4 KiB strings grew for longer than the CPU
        # limit on this machine even unloaded, so every try could end on CPU time instead.
        "function handler(w) { const a = []; while (true) a.push(new ArrayBuffer(64 << 20)); }",
        "more than its memory",
    ),
    "recursion": ("function handler(w) { const f = () => f() + 1; return f(); }", "stack"),
    "huge": (
        "function handler(w) { w.payload = 'x'.repeat(3 << 20); return w; }",
        "larger than",
    ),
    "eval": ("function handler(w) { return eval('w'); }", "code generation"),
    "function": (
        "function handler(w) { return (() => 0).constructor('return this')(); }",
        "code generation",
    ),
    "backtracking": (
        "function handler(w) { /(a+)+$/.test('a'.repeat(40) + 'b'); return w; }",
        "more than its time",
    ),
    "not-a-webhook": ("function handler(w) { return 'text'; }", "must return the webhook"),
}
POLLUTER = """function handler(w) {
  Object.prototype.polluted = "yes"; Array.prototype.push = null;
  JSON.stringify = () => "{}"; globalThis.leaked = 1;
  return w;
}"""
NEIGHBOUR = """function handler(w) {
  const outside = [typeof require, typeof process, typeof std, typeof os, typeof fetch,
                   typeof __date_clock, typeof SharedArrayBuffer].join();
  w.payload = { polluted: typeof ({}).polluted, leaked: typeof leaked, outside,
                n: w.payload.payload.n };
  return w;
}"""


async def test_hostile_handlers_are_contained_and_a_neighbour_is_delivered_meanwhile(
    client, database_url, receiver, worker_env, monkeypatch
):
    # Enough sandbox processes that every hostile case gets its turn on each try.
    monkeypatch.setenv("EVENTGATE_TRANSFORMATION_PROCESSES", "12")
    evil = await make_key(database_url, tenant="evil")
    good = await make_key(database_url, tenant="good")
    hostile = {}
    for name, (code, _) in HOSTILE.items():
        hostile[name] = await add_endpoint(client, evil, receiver, name)
        await set_code(client, evil, hostile[name]["id"], code)
    polluter = await add_endpoint(client, evil, receiver, "polluter")
    await set_code(client, evil, polluter["id"], POLLUTER)
    neighbour = await add_endpoint(client, good, receiver, "neighbour")
    await set_code(client, good, neighbour["id"], NEIGHBOUR)
    await client.post("/v1/events", json=event_body(), headers=auth(evil))
    for n in range(5):
        await client.post("/v1/events", json=event_body(payload={"n": n}), headers=auth(good))

    async with running_worker():
        await wait_for(lambda: len(receiver.at("neighbour")) == 5, timeout=30)
        await wait_for(
            lambda: all(
                delivery_rows(database_url, e["id"])[0][0] == "dead" for e in hostile.values()
            ),
            timeout=60,
        )

    busy = "transformation failed: this tenant's transformations are busy"
    # A memory bomb on a loaded machine may run out of CPU time before memory.
    also = {"memory": "more than its CPU time"}
    for name, (_, expected) in HOSTILE.items():
        [(_, attempts, _, failures)] = delivery_rows(database_url, hostile[name]["id"])
        assert (attempts, failures) == (3, 0), name
        # Each try hit its limit, or found the tenant's share of the sandbox taken by its
        # other hostile calls and failed at once (retried like any failure).
        errors = attempt_errors(database_url, hostile[name]["id"])
        assert any(expected in e for e in errors), (name, errors)
        allowed = (expected, also.get(name, expected))
        assert all(any(a in e for a in allowed) or e == busy for e in errors), (name, errors)
        assert receiver.at(name) == [], name
    assert len(receiver.at("polluter")) == 1  # its own result: stringify replaced, still JSON
    assert sorted(r.body["n"] for r in receiver.at("neighbour")) == [0, 1, 2, 3, 4]
    for arrived in receiver.at("neighbour"):
        assert (arrived.body["polluted"], arrived.body["leaked"]) == ("undefined", "undefined")
        assert set(arrived.body["outside"].split(",")) == {"undefined"}
        assert arrived.verified


async def test_one_tenants_endless_handlers_leave_a_neighbours_transformations_their_turn(
    client, database_url, receiver, worker_env, monkeypatch
):
    # Default sandbox: 2 processes, of which one tenant may hold one. A call that finds its
    # tenant's share taken fails as busy and is retried on the schedule: give the neighbour's
    # five calls (one at a time) seconds of tries, not the usual test schedule's half second.
    monkeypatch.setenv("EVENTGATE_DELIVERY_RETRY_SCHEDULE", "0,0.5,1,1,2,2,4")
    evil = await make_key(database_url, tenant="evil")
    good = await make_key(database_url, tenant="good")
    endless = await add_endpoint(client, evil, receiver, "endless")
    await set_code(client, evil, endless["id"], HOSTILE["endless"][0])
    neighbour = await add_endpoint(client, good, receiver, "neighbour")
    await set_code(client, good, neighbour["id"], NEIGHBOUR)
    evil_events = [event_body(payload={"n": n}) for n in range(30)]
    await client.post("/v1/events/batch", json={"events": evil_events}, headers=auth(evil))
    for n in range(5):
        await client.post("/v1/events", json=event_body(payload={"n": n}), headers=auth(good))

    async with running_worker():
        await wait_for(lambda: len(receiver.at("neighbour")) == 5, timeout=30)

    assert sorted(r.body["n"] for r in receiver.at("neighbour")) == [0, 1, 2, 3, 4]
    assert receiver.at("endless") == []
    cpu = "transformation failed: the transformation used more than its CPU time"
    busy = "transformation failed: this tenant's transformations are busy"
    errors = set(attempt_errors(database_url, endless["id"]))
    assert all(e.startswith(cpu) or e == busy for e in errors), errors
