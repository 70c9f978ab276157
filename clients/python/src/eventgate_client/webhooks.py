"""Verify a webhook Eventgate delivered (Standard Webhooks): `v1,` HMAC-SHA256 signatures with
the endpoint's whsec_ secret, `v1a,` Ed25519 signatures with its whpk_ public key."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

DEFAULT_TOLERANCE_SECONDS = 300


class WebhookVerificationError(Exception):
    """The request was not signed by the secret, or not recently."""


def verify_webhook(
    payload: bytes | str,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> Any:
    """The delivered event (decoded JSON) when a signature in `webhook-signature` matches
    `secret` and `webhook-timestamp` is within the tolerance; WebhookVerificationError if not.
    Verify the raw body as received: re-encoded JSON would not match."""
    body = payload.encode() if isinstance(payload, str) else payload
    lower = {name.lower(): value for name, value in headers.items()}
    try:
        message_id = lower["webhook-id"]
        timestamp = int(lower["webhook-timestamp"])
        signatures = lower["webhook-signature"].split()
    except (KeyError, ValueError) as exc:
        raise WebhookVerificationError("missing or malformed webhook headers") from exc
    if abs(time.time() - timestamp) > tolerance_seconds:
        raise WebhookVerificationError("the timestamp is outside the tolerance")
    signed = f"{message_id}.{timestamp}.".encode() + body
    if not any(_matches(signature, signed, secret) for signature in signatures):
        raise WebhookVerificationError("no signature matches the secret")
    return json.loads(body)


def _matches(signature: str, signed: bytes, secret: str) -> bool:
    version, _, value = signature.partition(",")
    try:
        given = base64.b64decode(value, validate=True)
    except binascii.Error:
        return False
    if version == "v1" and secret.startswith("whsec_"):
        key = base64.b64decode(secret.removeprefix("whsec_"))
        return hmac.compare_digest(hmac.digest(key, signed, hashlib.sha256), given)
    if version == "v1a" and secret.startswith("whpk_"):
        return _ed25519_valid(secret.removeprefix("whpk_"), signed, given)
    return False


def _ed25519_valid(public_key: str, signed: bytes, signature: bytes) -> bool:
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError as exc:
        raise RuntimeError("v1a signatures need `pip install eventgate-client[ed25519]`") from exc
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key)).verify(signature, signed)
    except (InvalidSignature, ValueError):
        return False
    return True
