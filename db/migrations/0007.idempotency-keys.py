"""Idempotency-Key: the first answer to a creating request, replayed to its retries."""

from yoyo import step

__depends__ = {"0006.rate-limits"}

APPLY = """
SET LOCAL lock_timeout = '5s';
CREATE TABLE idempotency_keys (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key text NOT NULL,
    fingerprint bytea NOT NULL,
    status_code integer NOT NULL,
    content_type text NOT NULL,
    body bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
COMMENT ON TABLE idempotency_keys IS
    'The stored answer to a request sent with an Idempotency-Key header (or an event''s '
    'metadata.idempotency_key), per tenant, committed in the same transaction as the change it '
    'made; fingerprint is the SHA-256 of method, path and body. Purged after expires_at.';
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);
"""

steps = [step(APPLY, "DROP TABLE idempotency_keys;")]
