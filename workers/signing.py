"""Standard Webhooks signatures of outgoing deliveries."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac

from core.secrets import SECRET_PREFIX


@functools.lru_cache(maxsize=4096)
def secret_key(secret: str) -> bytes:
    """The HMAC key inside a whsec_ secret (decoded once per secret)."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` with one whsec_ secret."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return (
        "v1," + base64.b64encode(hmac.digest(secret_key(secret), signed, hashlib.sha256)).decode()
    )


def signature_header(secrets_: list[str], message_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature value: one signature per valid secret, space separated."""
    return " ".join(signature(s, message_id, timestamp, body) for s in secrets_)
