"""Asymmetric signatures: an endpoint signs with HMAC (`v1`, a whsec_ secret) or Ed25519
(`v1a`, a whsk_ private key sealed like any secret); the public keys, not secret, are stored
as they are so the API and the portal can show them."""

from yoyo import step

__depends__ = {"0016.key-expiry"}

APPLY = """
SET LOCAL lock_timeout = '5s';
ALTER TABLE endpoints
    ADD COLUMN signature_scheme text NOT NULL DEFAULT 'v1'
        CHECK (signature_scheme IN ('v1', 'v1a')),
    ADD COLUMN public_key text,
    ADD COLUMN previous_public_key text;
COMMENT ON COLUMN endpoints.signature_scheme IS
    'v1: HMAC-SHA256 with the whsec_ secret; v1a: Ed25519 with the whsk_ private key.';
COMMENT ON COLUMN endpoints.public_key IS
    'v1a only: the whpk_ public key receivers verify with (not secret).';
COMMENT ON COLUMN endpoints.previous_public_key IS
    'The public key before the last rotation, valid until previous_secret_expires_at.';
"""

ROLLBACK = """
ALTER TABLE endpoints DROP COLUMN signature_scheme, DROP COLUMN public_key,
    DROP COLUMN previous_public_key;
"""

steps = [step(APPLY, ROLLBACK)]
