"""Endpoint signing secrets (Standard Webhooks): a symmetric `whsec_` + base64 of 32 random
bytes (HMAC-SHA256, signatures `v1,`), or an Ed25519 key pair, `whsk_` + base64 of the 32-byte
private key and `whpk_` + base64 of the 32-byte public key (signatures `v1a,`), whose public
half a receiver verifies with."""

from __future__ import annotations

import base64
import secrets
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SECRET_PREFIX = "whsec_"
PRIVATE_KEY_PREFIX = "whsk_"
PUBLIC_KEY_PREFIX = "whpk_"
SignatureScheme = Literal["v1", "v1a"]


def new_endpoint_secret() -> str:
    """A fresh endpoint secret: 32 random bytes, base64, with the whsec_ prefix."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def new_signing_key() -> str:
    """A fresh Ed25519 private key: 32 random bytes, base64, with the whsk_ prefix."""
    return PRIVATE_KEY_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def new_secret_for(scheme: SignatureScheme) -> str:
    """A fresh secret of the scheme: whsec_ for v1 (HMAC), whsk_ for v1a (Ed25519)."""
    return new_signing_key() if scheme == "v1a" else new_endpoint_secret()


def scheme_of(secret: str) -> SignatureScheme:
    """The signature scheme a stored secret signs with."""
    return "v1a" if secret.startswith(PRIVATE_KEY_PREFIX) else "v1"


def private_key(secret: str) -> Ed25519PrivateKey:
    """The Ed25519 key inside a whsk_ secret."""
    seed = base64.b64decode(secret.removeprefix(PRIVATE_KEY_PREFIX))
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_of(secret: str) -> str | None:
    """The whpk_ public key of a whsk_ secret (None for an HMAC secret: it has none)."""
    if scheme_of(secret) != "v1a":
        return None
    raw = private_key(secret).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return PUBLIC_KEY_PREFIX + base64.b64encode(raw).decode()
