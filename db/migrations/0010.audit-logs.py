"""Audit logs: who changed what, appended in the transaction of the change, hash-chained per
tenant so that an edit or a deletion in the middle shows."""

from yoyo import step

__depends__ = {"0009.sources"}

TABLES = """
SET LOCAL lock_timeout = '5s';
CREATE TABLE audit_logs (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    actor_key_id uuid,
    actor_key_prefix text,
    action text NOT NULL,
    resource_type text NOT NULL,
    resource_id text NOT NULL,
    before jsonb,
    after jsonb,
    client_ip text,
    user_agent text,
    request_id text,
    prev_hash bytea NOT NULL,
    hash bytea NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
COMMENT ON TABLE audit_logs IS
    'Every change to keys, endpoints, event types, sources and rate limits, and every secret '
    'reveal or rotation: actor, action, resource, before and after (never a secret), where '
    'from. Written in the transaction of the change. Per tenant a hash chain: hash = '
    'sha256(prev_hash || eventgate_audit_content(row)); `eventgate audit verify` recomputes it.';
CREATE INDEX audit_logs_action_idx ON audit_logs (tenant_id, action, seq);
CREATE INDEX audit_logs_resource_idx ON audit_logs (tenant_id, resource_type, resource_id, seq);
CREATE INDEX audit_logs_actor_idx ON audit_logs (tenant_id, actor_key_id, seq);

CREATE TABLE audit_heads (
    tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    hash bytea NOT NULL
);
COMMENT ON TABLE audit_heads IS
    'The last seq and hash of each tenant''s audit chain; its row lock serializes appends.';
"""

FUNCTIONS = r"""
-- What a row's hash covers: every column but the hashes, in a fixed text form (epoch
-- microseconds and jsonb's own canonical text, so no session setting changes it).
CREATE FUNCTION eventgate_audit_content(a audit_logs) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT convert_to(jsonb_build_array(
        a.tenant_id, a.seq, a.id,
        (extract(epoch FROM a.created_at) * 1000000)::bigint,
        a.actor_key_id, a.actor_key_prefix, a.action, a.resource_type, a.resource_id,
        a.before, a.after, a.client_ip, a.user_agent, a.request_id)::text, 'UTF8')
$$;
COMMENT ON FUNCTION eventgate_audit_content(audit_logs) IS
    'The bytes an audit row''s hash covers (with the previous row''s hash before them).';

-- Append one entry at the end of its tenant's chain (row lock on the tenant's head).
CREATE FUNCTION eventgate_audit_append(entry audit_logs) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    head audit_heads;
BEGIN
    INSERT INTO audit_heads (tenant_id, seq, hash)
    VALUES (entry.tenant_id, 0, '\x'::bytea) ON CONFLICT (tenant_id) DO NOTHING;
    SELECT * INTO head FROM audit_heads WHERE tenant_id = entry.tenant_id FOR UPDATE;
    entry.created_at := now();
    entry.seq := head.seq + 1;
    entry.prev_hash := head.hash;
    entry.hash := sha256(head.hash || eventgate_audit_content(entry));
    INSERT INTO audit_logs SELECT entry.*;
    UPDATE audit_heads SET seq = entry.seq, hash = entry.hash WHERE tenant_id = entry.tenant_id;
    RETURN entry.seq;
END
$$;
COMMENT ON FUNCTION eventgate_audit_append(audit_logs) IS
    'Append an audit entry to its tenant''s hash chain (seq, prev_hash and hash are set here).';
"""

steps = [
    step(TABLES, "DROP TABLE audit_heads; DROP TABLE audit_logs;"),
    step(
        FUNCTIONS,
        "DROP FUNCTION eventgate_audit_append(audit_logs);"
        "DROP FUNCTION eventgate_audit_content(audit_logs);",
    ),
]
