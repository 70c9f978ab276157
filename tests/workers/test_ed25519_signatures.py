"""Asymmetric signatures (Standard Webhooks v1a): an endpoint may sign with Ed25519; its
private key is sealed like any secret and never shown, its public key is served by the API
and the portal, and receivers verify with an independent implementation (`cryptography`)."""

from __future__ import annotations

import base64
import json

import psycopg
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.app.console.test_portal import portal_for
from tests.helpers import auth, event_body, make_key, running_worker, wait_for


def verifies(public_key: str, received, signature: str, raw: bytes | None = None) -> bool:
    """Whether one `v1a,<base64>` signature of a received delivery (or of another body) holds
    under `public_key`."""
    scheme, _, encoded = signature.partition(",")
    if scheme != "v1a":
        return False
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key.removeprefix("whpk_")))
    headers = received.headers
    body = received.raw if raw is None else raw
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    try:
        key.verify(base64.b64decode(encoded), signed)
    except InvalidSignature:
        return False
    return True


async def test_deliveries_signed_with_ed25519_verify_with_the_public_key_only(
    client, database_url, receiver, worker_env
):
    key = await make_key(database_url)
    created = await client.post(
        "/v1/endpoints",
        json={"url": receiver.endpoint_url("ed"), "signature_scheme": "v1a"},
        headers=auth(key),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    endpoint, public_key = body["endpoint"], body["endpoint"]["public_key"]
    assert body["secret"] is None  # the private key never leaves
    assert endpoint["signature_scheme"] == "v1a"
    assert public_key.startswith("whpk_")
    path = f"/v1/endpoints/{endpoint['id']}"
    shown = (await client.get(f"{path}/secret", headers=auth(key))).json()
    assert (shown["secret"], shown["public_key"]) == (None, public_key)

    await client.post("/v1/events", json=event_body(), headers=auth(key))
    # API calls are made while no in-process worker runs: the test client blocks this event
    # loop during a request, and a worker frozen inside a transaction would hold its locks.
    async with running_worker():
        await wait_for(lambda: len(receiver.at("ed")) == 1, what="the first delivery")
    first = receiver.at("ed")[0]
    (signature,) = first.headers["webhook-signature"].split()
    assert verifies(public_key, first, signature)
    assert not verifies(public_key, first, signature, raw=first.raw + b" ")  # tampered

    rotated = (await client.post(f"{path}/rotate-secret", headers=auth(key))).json()
    assert rotated["previous_public_key"] == public_key
    new_key = rotated["public_key"]
    assert new_key.startswith("whpk_")
    assert new_key != public_key
    await client.post("/v1/events", json=event_body(), headers=auth(key))
    async with running_worker():
        await wait_for(lambda: len(receiver.at("ed")) == 2, what="a delivery during the grace")
    second = receiver.at("ed")[1]
    signatures = second.headers["webhook-signature"].split()
    assert len(signatures) == 2  # dual-signed while the grace lasts
    assert any(verifies(new_key, second, s) for s in signatures)
    assert any(verifies(public_key, second, s) for s in signatures)

    # The private keys are sealed in the database and shown nowhere.
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT secret_encrypted FROM endpoints").fetchone()[0]
        audit = json.dumps(conn.execute("SELECT before, after FROM audit_logs").fetchall())
    assert b"whsk_" not in bytes(stored)
    assert "whsk_" not in audit


async def test_an_hmac_endpoint_switches_to_ed25519_signing_with_both_during_the_grace(
    client, database_url, receiver, worker_env
):
    key = await make_key(database_url)
    created = await client.post(
        "/v1/endpoints",
        json={"url": receiver.endpoint_url("sw"), "channels": ["c"]},
        headers=auth(key),
    )
    endpoint_id = created.json()["endpoint"]["id"]
    receiver.secrets["sw"] = [created.json()["secret"]]
    path = f"/v1/endpoints/{endpoint_id}/rotate-secret"
    refused = await client.post(
        path,
        json={"signature_scheme": "v1a", "secret": "whsec_" + "A" * 44},
        headers=auth(key),
    )
    assert refused.status_code == 400
    switched = await client.post(path, json={"signature_scheme": "v1a"}, headers=auth(key))
    assert switched.status_code == 200, switched.text
    view = switched.json()
    assert view["secret"] is None
    assert view["previous_secret"] == created.json()["secret"]  # still shared during the grace
    public_key = view["public_key"]
    await client.post("/v1/events", json=event_body(channels=["c"]), headers=auth(key))
    async with running_worker():
        await wait_for(lambda: len(receiver.at("sw")) == 1, what="the delivery")
    received = receiver.at("sw")[0]
    assert received.verified  # the HMAC signature, by the standardwebhooks library
    signatures = received.headers["webhook-signature"].split()
    assert sorted(s.split(",")[0] for s in signatures) == ["v1", "v1a"]
    assert any(verifies(public_key, received, s) for s in signatures)
    # The portal shows the customer the key to verify with.
    portal = await portal_for(client, key, "c")
    page = await client.get(f"{portal}/endpoints/{endpoint_id}")
    assert public_key in page.text
    assert "whsk_" not in page.text
