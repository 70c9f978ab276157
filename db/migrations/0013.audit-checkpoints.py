"""Audit retention that keeps the chain verifiable: where old entries go, a checkpoint keeps
the last removed entry's seq and hash, which the first remaining entry links to."""

from yoyo import step

__depends__ = {"0012.request-logs"}

APPLY = """
SET LOCAL lock_timeout = '5s';
CREATE TABLE audit_checkpoints (
    tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    hash bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE audit_checkpoints IS
    'Per tenant, the seq and hash of the last audit entry removed by retention: the first '
    'remaining entry''s prev_hash must equal it, so trimming never breaks verification.';
CREATE INDEX audit_logs_created_idx ON audit_logs (created_at);
"""

steps = [step(APPLY, "DROP INDEX audit_logs_created_idx; DROP TABLE audit_checkpoints;")]
