"""POST /v1/triggers/{token}: each provider's signature as the provider documents it, replays,
redeliveries, form bodies, the size limit, and the way to the inbox and to a receiver."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
import pytest
from standardwebhooks.webhooks import Webhook

from tests.helpers import add_endpoint, auth, make_key, running_worker, wait_for

BODY = json.dumps({"id": "evt_1", "type": "invoice.paid", "data": {"amount": 990}}).encode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"another secret of thirty-two b..").decode()
STALE = 10 * 60  # seconds: outside every scheme's 5-minute tolerance


def _hex(secret: str, content: bytes, algorithm: str = "sha256") -> str:
    return hmac.new(secret.encode(), content, getattr(hashlib, algorithm)).hexdigest()


def _b64(secret: str, content: bytes, algorithm: str = "sha256") -> str:
    digest = hmac.new(secret.encode(), content, getattr(hashlib, algorithm)).digest()
    return base64.b64encode(digest).decode()


def github(secret: str, body: bytes, ts: int) -> dict[str, str]:
    return {"X-Hub-Signature-256": "sha256=" + _hex(secret, body), "X-GitHub-Delivery": "d-1"}


def stripe(secret: str, body: bytes, ts: int) -> dict[str, str]:
    signature = _hex(secret, f"{ts}.".encode() + body)
    # Stripe lists several v1 signatures during a secret roll; one matching is enough.
    return {"Stripe-Signature": f"t={ts},v1={'0' * 64},v1={signature},v0=abc"}


def shopify(secret: str, body: bytes, ts: int) -> dict[str, str]:
    return {"X-Shopify-Hmac-Sha256": _b64(secret, body), "X-Shopify-Webhook-Id": "w-1"}


def slack(secret: str, body: bytes, ts: int) -> dict[str, str]:
    signature = "v0=" + _hex(secret, f"v0:{ts}:".encode() + body)
    return {"X-Slack-Signature": signature, "X-Slack-Request-Timestamp": str(ts)}


def standard(secret: str, body: bytes, ts: int) -> dict[str, str]:
    sent_at = datetime.fromtimestamp(ts, UTC)
    signature = Webhook(secret).sign("msg_1", sent_at, body.decode())
    return {"webhook-id": "msg_1", "webhook-timestamp": str(ts), "webhook-signature": signature}


def generic(secret: str, body: bytes, ts: int) -> dict[str, str]:
    signature = _b64(secret, f"{ts}.".encode() + body, "sha512")
    return {"X-Signature": "sig=" + signature, "X-Timestamp": str(ts)}


def basic(secret: str, body: bytes, ts: int) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"hooks:{secret}".encode()).decode()}


def api_key(secret: str, body: bytes, ts: int) -> dict[str, str]:
    return {"X-Hook-Key": secret}


def nothing(secret: str, body: bytes, ts: int) -> dict[str, str]:
    return {}


Signer = Callable[[str, bytes, int], dict[str, str]]
HMAC = {"scheme": "hmac", "header": "X-Signature", "algorithm": "sha512", "encoding": "base64"}
SCHEMES: list[tuple[dict, str | None, Signer, bool]] = [
    # (verification, secret to give, signer, timestamped)
    ({"scheme": "github"}, None, github, False),
    ({"scheme": "stripe"}, "whsec_stripe_given_by_the_dashboard", stripe, True),
    ({"scheme": "shopify"}, "shpss_app_secret", shopify, False),
    ({"scheme": "slack"}, "8f742231b10e8888abcd99yyyzzz85a5", slack, True),
    ({"scheme": "standard-webhooks"}, None, standard, True),
    ({**HMAC, "prefix": "sig=", "timestamp_header": "X-Timestamp"}, None, generic, True),
    ({"scheme": "basic", "username": "hooks"}, None, basic, False),
    ({"scheme": "api-key", "header": "X-Hook-Key"}, None, api_key, False),
    ({"scheme": "none"}, None, nothing, False),
]
IDS = [s[0]["scheme"] for s in SCHEMES]


async def make_source(client, key: str, verification: dict, secret: str | None, **fields):
    body = {"name": "billing", "verification": verification, "event_type": "invoice.paid"}
    body.update(fields)
    if secret is not None:
        body["secret"] = secret
    created = await client.post("/v1/sources", json=body, headers=auth(key))
    assert created.status_code == 201, created.text
    return created.json()["source"], created.json()["secret"]


async def send(client, path: str, body: bytes, headers: dict, kind: str = "application/json"):
    return await client.post(path, content=body, headers={"Content-Type": kind, **headers})


def _events(database_url: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT source, event_type, payload, metadata FROM events").fetchall()


@pytest.mark.parametrize(("verification", "given", "sign", "timestamped"), SCHEMES, ids=IDS)
async def test_a_signed_request_becomes_an_event_and_a_forged_one_is_refused(
    client, database_url, verification, given, sign, timestamped
):
    key = await make_key(database_url)
    source, secret = await make_source(client, key, verification, given)
    path = source["trigger_path"]
    now = int(time.time())
    accepted = await send(client, path, BODY, sign(secret, BODY, now))
    assert accepted.status_code == 202, accepted.text
    [(name, event_type, payload, metadata)] = _events(database_url)
    assert (name, event_type, payload) == ("billing", "invoice.paid", json.loads(BODY))
    assert metadata["source_id"] == source["id"]
    assert accepted.json()["event_id"]
    if verification["scheme"] == "none":
        return
    forged = await send(client, path, BODY, sign(OTHER_SECRET, BODY, now))
    assert forged.status_code == 401
    assert forged.json()["error"]["code"] == "signature_invalid"
    signs_body = verification["scheme"] not in ("basic", "api-key")
    if signs_body:
        tampered = await send(client, path, BODY + b" ", sign(secret, BODY, now))
        assert tampered.status_code == 401
    unsigned = await send(client, path, BODY, {})
    assert unsigned.status_code == 401
    if timestamped:
        stale = await send(client, path, BODY, sign(secret, BODY, now - STALE))
        assert stale.status_code == 401
        assert stale.json()["error"]["code"] == "timestamp_out_of_tolerance"
    assert len(_events(database_url)) == 1
    rejections = await client.get(f"/v1/sources/{source['id']}/rejections", headers=auth(key))
    reasons = [r["reason"] for r in rejections.json()["rejections"]]
    assert len(reasons) == 2 + signs_body + timestamped
    assert secret not in json.dumps(rejections.json())


async def test_a_redelivery_answers_with_the_first_event(client, database_url):
    key = await make_key(database_url)
    source, secret = await make_source(client, key, {"scheme": "github"}, None)
    headers = github(secret, BODY, 0)
    answers = await asyncio.gather(
        *(send(client, source["trigger_path"], BODY, headers) for _ in range(10))
    )
    assert sorted(a.status_code for a in answers) == [200] * 9 + [202]
    assert len({a.json()["event_id"] for a in answers}) == 1
    assert {a.json()["duplicate"] for a in answers if a.status_code == 200} == {True}
    # Without a provider delivery id, an Idempotency-Key does the same.
    plain, _ = await make_source(client, key, {"scheme": "none"}, None, name="plain")
    keyed = {"Idempotency-Key": "retry-7"}
    first = await send(client, plain["trigger_path"], BODY, keyed)
    again = await send(client, plain["trigger_path"], BODY, keyed)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["event_id"] == again.json()["event_id"]
    assert len(_events(database_url)) == 2


async def test_event_type_from_a_header_or_a_pointer_and_kept_headers(client, database_url):
    key = await make_key(database_url)
    from_header, _ = await make_source(
        client,
        key,
        {"scheme": "none"},
        None,
        name="gh",
        event_type=None,
        event_type_header="X-GitHub-Event",
        event_type_prefix="github.",
        keep_headers=["X-GitHub-Event", "User-Agent"],
    )
    headers = {"X-GitHub-Event": "push", "User-Agent": "GitHub-Hookshot/1"}
    assert (await send(client, from_header["trigger_path"], BODY, headers)).status_code == 202
    from_body, _ = await make_source(
        client,
        key,
        {"scheme": "none"},
        None,
        name="st",
        event_type=None,
        event_type_pointer="/type",
    )
    assert (await send(client, from_body["trigger_path"], BODY, {})).status_code == 202
    missing = await send(client, from_header["trigger_path"], BODY, {})
    assert missing.status_code == 400
    rows = sorted(_events(database_url))
    assert [(r[0], r[1]) for r in rows] == [("gh", "github.push"), ("st", "invoice.paid")]
    assert rows[0][3]["headers"] == {"x-github-event": "push", "user-agent": "GitHub-Hookshot/1"}


async def test_form_bodies_the_size_limit_and_unsupported_types(client, database_url):
    key = await make_key(database_url)
    source, secret = await make_source(client, key, {"scheme": "slack"}, "slack-signing-secret")
    path, now = source["trigger_path"], int(time.time())
    form = b"command=%2Fdeploy&text=prod&tag=a&tag=b"
    kind = "application/x-www-form-urlencoded"
    accepted = await send(client, path, form, slack(secret, form, now), kind)
    assert accepted.status_code == 202, accepted.text
    assert _events(database_url)[0][2] == {"command": "/deploy", "text": "prod", "tag": ["a", "b"]}
    huge = b'{"x": "' + b"a" * (512 * 1024) + b'"}'
    too_large = await send(client, path, huge, slack(secret, huge, now))
    assert too_large.status_code == 413
    xml = b"<a/>"
    assert (await send(client, path, xml, slack(secret, xml, now), "text/xml")).status_code == 415
    challenge = json.dumps({"type": "url_verification", "challenge": "c-42"}).encode()
    answered = await send(client, path, challenge, slack(secret, challenge, now))
    assert (answered.status_code, answered.json()) == (200, {"challenge": "c-42"})
    assert len(_events(database_url)) == 1
    rejections = await client.get(f"/v1/sources/{source['id']}/rejections", headers=auth(key))
    assert [r["status_code"] for r in rejections.json()["rejections"]] == [415, 413]


async def test_unknown_tokens_and_hostile_bodies_answer_4xx(client, database_url):
    key = await make_key(database_url)
    source, _ = await make_source(client, key, {"scheme": "none"}, None)
    path = source["trigger_path"]
    assert (await send(client, "/v1/triggers/src_nope", BODY, {})).status_code == 404
    assert (await send(client, "/v1/triggers/" + "x" * 40, BODY, {})).status_code == 404
    for body in (b"\xff\xfe", b'{"a": "\\u0000"}', b"[" * 1000 + b"]" * 1000, b"", b"{"):
        answer = await send(client, path, body, {})
        assert answer.status_code == 400, (body[:20], answer.text)
    bad_key = await send(client, path, BODY, {"Idempotency-Key": "k" * 300})
    assert bad_key.status_code == 400
    assert _events(database_url) == []


async def test_a_trigger_reaches_a_subscribed_receiver_and_the_inbox(
    client, database_url, receiver, worker_env
):
    key = await make_key(database_url)
    await add_endpoint(client, key, receiver, "hooks", event_types=["invoice.*"])
    source, secret = await make_source(client, key, {"scheme": "github"}, None)
    assert (
        await send(client, source["trigger_path"], BODY, github(secret, BODY, 0))
    ).status_code == 202
    inbox = (await client.get("/v1/inbox", params={"source": "billing"}, headers=auth(key))).json()
    assert [e["payload"] for e in inbox["events"]] == [json.loads(BODY)]
    async with running_worker():
        await wait_for(lambda: receiver.at("hooks"), what="the delivery")
    [delivered] = receiver.at("hooks")
    assert delivered.verified
    assert delivered.body["payload"] == json.loads(BODY)
    assert delivered.body["source"] == "billing"
