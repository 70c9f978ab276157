"""Standard Webhooks signatures of outgoing deliveries: `v1,` (HMAC-SHA256 with a whsec_
secret) or `v1a,` (Ed25519 with a whsk_ private key), over "{id}.{timestamp}.{body}"."""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.secrets import SECRET_PREFIX, private_key, scheme_of


# Keys are derived anew for each signature (microseconds): the only plaintext kept between
# signatures is the keyring's, which forgets an opened secret after a few minutes.
def secret_key(secret: str) -> bytes:
    """The HMAC key inside a whsec_ secret."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signing_key(secret: str) -> Ed25519PrivateKey:
    """The Ed25519 key inside a whsk_ secret."""
    return private_key(secret)


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` with a whsec_ secret, `v1a,<base64 Ed25519>` with a whsk_ one,
    of "{id}.{timestamp}.{body}"."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    if scheme_of(secret) == "v1a":
        return "v1a," + base64.b64encode(signing_key(secret).sign(signed)).decode()
    return (
        "v1," + base64.b64encode(hmac.digest(secret_key(secret), signed, hashlib.sha256)).decode()
    )


def signature_header(secrets_: list[str], message_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature value: one signature per valid secret, space separated."""
    return " ".join(signature(s, message_id, timestamp, body) for s in secrets_)
