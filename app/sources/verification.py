"""Checking a trigger request as its provider signs it, on the raw bytes, before any parsing.

Every comparison is constant-time; a refusal says what was wrong, never what was expected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

from app.errors import EventgateError
from app.sources.schemas import (
    ApiKey,
    Basic,
    GitHub,
    Hmac,
    NoVerification,
    Shopify,
    Slack,
    StandardWebhooks,
    Stripe,
    Verification,
)

Headers = Mapping[str, str]  # lower-case names


class SignatureRefused(EventgateError):
    """The request is not signed (or authenticated) as the source requires."""

    status_code, code = 401, "signature_invalid"


class TimestampRefused(EventgateError):
    """The signed timestamp is outside the scheme's tolerance: a replay, or a wrong clock."""

    status_code, code = 401, "timestamp_out_of_tolerance"


def _header(headers: Headers, name: str) -> str:
    value = headers.get(name.lower())
    if not value:
        raise SignatureRefused(f"the {name} header is missing")
    return value


def _fresh(timestamp: str, tolerance: int, now: float) -> None:
    try:
        sent = int(timestamp)
    except ValueError:
        raise SignatureRefused("the signature timestamp is not a Unix time") from None
    if abs(now - sent) > tolerance:
        raise TimestampRefused(
            f"the signature timestamp is {int(now - sent)} s from now; at most {tolerance} s"
        )


def _mac(secret: bytes, content: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(secret, content, getattr(hashlib, algorithm)).digest()


def _matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _github(scheme: GitHub, secret: str, headers: Headers, body: bytes, now: float) -> None:
    given = _header(headers, "X-Hub-Signature-256")
    if not _matches(given, "sha256=" + _mac(secret.encode(), body).hex()):
        raise SignatureRefused("X-Hub-Signature-256 does not match the body")


def _stripe(scheme: Stripe, secret: str, headers: Headers, body: bytes, now: float) -> None:
    parts = [item.partition("=") for item in _header(headers, "Stripe-Signature").split(",")]
    timestamps = [value for key, _, value in parts if key.strip() == "t"]
    signatures = [value for key, _, value in parts if key.strip() == "v1"]
    if len(timestamps) != 1 or not signatures:
        raise SignatureRefused("Stripe-Signature needs one t= and at least one v1=")
    _fresh(timestamps[0], scheme.tolerance_seconds, now)
    expected = _mac(secret.encode(), timestamps[0].encode() + b"." + body).hex()
    if not any(_matches(signature, expected) for signature in signatures):
        raise SignatureRefused("no v1 signature of Stripe-Signature matches the body")


def _shopify(scheme: Shopify, secret: str, headers: Headers, body: bytes, now: float) -> None:
    given = _header(headers, "X-Shopify-Hmac-Sha256")
    if not _matches(given, base64.b64encode(_mac(secret.encode(), body)).decode()):
        raise SignatureRefused("X-Shopify-Hmac-Sha256 does not match the body")


def _slack(scheme: Slack, secret: str, headers: Headers, body: bytes, now: float) -> None:
    timestamp = _header(headers, "X-Slack-Request-Timestamp")
    given = _header(headers, "X-Slack-Signature")
    _fresh(timestamp, scheme.tolerance_seconds, now)
    base = b"v0:" + timestamp.encode() + b":" + body
    if not _matches(given, "v0=" + _mac(secret.encode(), base).hex()):
        raise SignatureRefused("X-Slack-Signature does not match the body")


def _standard(
    scheme: StandardWebhooks, secret: str, headers: Headers, body: bytes, now: float
) -> None:
    message_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    given = _header(headers, "webhook-signature")
    _fresh(timestamp, scheme.tolerance_seconds, now)
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureRefused("the source's secret is not a whsec_ secret") from None
    content = f"{message_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(_mac(key, content)).decode()
    versions = [item.partition(",") for item in given.split()]
    if not any(v == "v1" and _matches(sig, expected) for v, _, sig in versions):
        raise SignatureRefused("no v1 signature of webhook-signature matches the body")


def _decode(value: str, encoding: str) -> bytes:
    try:
        return bytes.fromhex(value) if encoding == "hex" else base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureRefused(f"the signature is not {encoding}") from None


def _hmac(scheme: Hmac, secret: str, headers: Headers, body: bytes, now: float) -> None:
    given = _header(headers, scheme.header)
    if not given.startswith(scheme.prefix):
        raise SignatureRefused(f"{scheme.header} does not start with {scheme.prefix!r}")
    content = body
    if scheme.timestamp_header:
        timestamp = _header(headers, scheme.timestamp_header)
        _fresh(timestamp, scheme.tolerance_seconds, now)
        content = timestamp.encode() + b"." + body
    signature = _decode(given[len(scheme.prefix) :].strip(), scheme.encoding)
    if not hmac.compare_digest(signature, _mac(secret.encode(), content, scheme.algorithm)):
        raise SignatureRefused(f"{scheme.header} does not match the body")


def _basic(scheme: Basic, secret: str, headers: Headers, body: bytes, now: float) -> None:
    kind, _, encoded = _header(headers, "Authorization").partition(" ")
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, ValueError):
        raise SignatureRefused("Authorization is not Basic credentials") from None
    good_user = _matches(user, scheme.username)
    if kind.lower() != "basic" or not (_matches(password, secret) and good_user):
        raise SignatureRefused("wrong username or password")


def _api_key(scheme: ApiKey, secret: str, headers: Headers, body: bytes, now: float) -> None:
    if not _matches(_header(headers, scheme.header), secret):
        raise SignatureRefused(f"wrong {scheme.header}")


CHECKS: dict[type, Callable[..., None]] = {
    GitHub: _github,
    Stripe: _stripe,
    Shopify: _shopify,
    Slack: _slack,
    StandardWebhooks: _standard,
    Hmac: _hmac,
    Basic: _basic,
    ApiKey: _api_key,
}


def verify(
    scheme: Verification,
    secret: str | None,
    headers: Headers,
    body: bytes,
    now: float | None = None,
) -> None:
    """Refuse the request unless it is signed (or authenticated) as the scheme requires."""
    if isinstance(scheme, NoVerification):
        return
    if not secret:
        raise SignatureRefused("the source has no secret to verify with")
    CHECKS[type(scheme)](scheme, secret, headers, body, time.time() if now is None else now)
