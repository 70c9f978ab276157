-- Tenants and their API keys.
SET LOCAL lock_timeout = '5s';

CREATE TABLE tenants (
    id uuid PRIMARY KEY,
    name text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE tenants IS 'Isolation unit: every other Eventgate row belongs to exactly one tenant.';

CREATE TABLE api_keys (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name text NOT NULL,
    prefix text NOT NULL UNIQUE,
    secret_hash text NOT NULL,
    scopes text[] NOT NULL,
    rate_limit_tier text NOT NULL DEFAULT 'default',
    expires_at timestamptz,
    revoked_at timestamptz,
    last_used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by uuid REFERENCES api_keys (id) ON DELETE SET NULL,
    metadata jsonb NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE api_keys IS
    'API keys (eg_<prefix>_<secret>): looked up by prefix, secret verified against the argon2id secret_hash. '
    'A key is usable while revoked_at is null and expires_at is null or in the future.';
COMMENT ON COLUMN api_keys.last_used_at IS 'Flushed in batches by the API processes; may lag by a few seconds.';
CREATE INDEX api_keys_tenant_id_idx ON api_keys (tenant_id, id);
