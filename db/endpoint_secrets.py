"""SQL for an endpoint's signing secrets: read, rotated with a grace for the old one, and
sealed (AES-256-GCM, core/encryption.py) on the way in like its destination config."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection

from core.encryption import Where, keyring
from core.secrets import public_key_of, scheme_of
from db.query import fetch_one, fetch_value

LIVE = "tenant_id = %(tenant_id)s AND id = %(id)s AND deleted_at IS NULL"


class Secrets(msgspec.Struct):
    """An endpoint's signing secrets; previous is set while a rotation's grace lasts. With
    Ed25519 (v1a) the secrets are private keys, and the public keys go with them."""

    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    public_key: str | None = None
    previous_public_key: str | None = None


class SealedSecrets(msgspec.Struct):
    """An endpoint's secrets as stored: AES-256-GCM ciphertext (core/encryption.py)."""

    secret_encrypted: bytes
    previous_secret_encrypted: bytes | None
    previous_secret_expires_at: datetime | None
    public_key: str | None
    previous_public_key: str | None

    def opened(self, endpoint_id: uuid.UUID) -> Secrets:
        """The plaintext secrets (in this process's memory only)."""
        previous = self.previous_secret_encrypted
        return Secrets(
            open_secret(endpoint_id, "secret", self.secret_encrypted),
            open_secret(endpoint_id, "previous_secret", previous) if previous else None,
            self.previous_secret_expires_at,
            self.public_key,
            self.previous_public_key,
        )


def seal_secret(endpoint_id: uuid.UUID, column: str, plaintext: str) -> bytes:
    """The stored form of one of an endpoint's secrets."""
    return keyring().seal(plaintext, Where("endpoints", column, endpoint_id))


def open_secret(endpoint_id: uuid.UUID, column: str, sealed: bytes) -> str:
    """One of an endpoint's secrets from its stored form."""
    return keyring().open(sealed, Where("endpoints", column, endpoint_id))


def seal_config(endpoint_id: uuid.UUID, whole: str | None) -> bytes | None:
    """The stored form of a whole destination config (its credentials with it)."""
    return None if whole is None else seal_secret(endpoint_id, "config", whole)


# The signing secrets of one live endpoint; previous only while its grace lasts (endpoints_pkey).
GET_SECRETS = f"""
SELECT secret_encrypted,
       CASE WHEN previous_secret_expires_at > now() THEN previous_secret_encrypted END
           AS previous_secret_encrypted,
       CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END
           AS previous_secret_expires_at,
       public_key,
       CASE WHEN previous_secret_expires_at > now() THEN previous_public_key END
           AS previous_public_key
FROM endpoints WHERE {LIVE}
"""

# Lock one live endpoint's current secret for a rotation (endpoints_pkey).
LOCK_SECRET = f"SELECT secret_encrypted FROM endpoints WHERE {LIVE} FOR UPDATE"

# Make a new secret (and its scheme and public key) current; the old one, sealed again for its
# own column, keeps signing for the grace, with its public key (endpoints_pkey).
ROTATE_SECRET = f"""
UPDATE endpoints SET previous_secret_encrypted = %(previous)s, secret_encrypted = %(secret)s,
    previous_public_key = public_key, public_key = %(public_key)s,
    signature_scheme = %(signature_scheme)s,
    previous_secret_expires_at = now() + make_interval(secs => %(grace_seconds)s), updated_at = now()
WHERE {LIVE}
RETURNING secret_encrypted, previous_secret_encrypted, previous_secret_expires_at, public_key,
          previous_public_key
"""


def _where(tenant_id: uuid.UUID, endpoint_id: uuid.UUID, **extra: Any) -> dict[str, Any]:
    return {"tenant_id": tenant_id, "id": endpoint_id, **extra}


async def get_secrets(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> Secrets | None:
    """The endpoint's current (and, during a rotation, previous) secret."""
    sealed = await fetch_one(conn, GET_SECRETS, _where(tenant_id, endpoint_id), SealedSecrets)
    return None if sealed is None else sealed.opened(endpoint_id)


async def rotate_secret(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    secret: str,
    grace_seconds: float,
) -> Secrets | None:
    """Make `secret` current; the old one keeps signing for grace_seconds (call inside a
    transaction: the row stays locked from reading the old secret to storing both)."""
    current = await fetch_value(conn, LOCK_SECRET, _where(tenant_id, endpoint_id))
    if current is None:
        return None
    previous = open_secret(endpoint_id, "secret", current)
    params = _where(
        tenant_id,
        endpoint_id,
        secret=seal_secret(endpoint_id, "secret", secret),
        previous=seal_secret(endpoint_id, "previous_secret", previous),
        public_key=public_key_of(secret),
        signature_scheme=scheme_of(secret),
        grace_seconds=grace_seconds,
    )
    sealed = await fetch_one(conn, ROTATE_SECRET, params, SealedSecrets)
    return None if sealed is None else sealed.opened(endpoint_id)
