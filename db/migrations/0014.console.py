"""The web console's sign-in sessions, customer portal links, and the indexes their pages
read by: a tenant's events in time order, a tenant's endpoints by channel."""

from yoyo import step

__depends__ = {"0013.audit-checkpoints"}

SESSIONS = """
SET LOCAL lock_timeout = '5s';
CREATE TABLE console_sessions (
    token_hash bytea PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key_id uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
COMMENT ON TABLE console_sessions IS
    'Signed-in web console sessions: the sha256 of the session cookie (never the cookie), the '
    'API key it was opened with (a session acts with that key''s scopes and ends when the key '
    'is revoked or expires), the CSRF token every form carries. Deleted at sign-out; expired '
    'rows are purged by the purge_expired task.';
CREATE INDEX console_sessions_expires_idx ON console_sessions (expires_at);

CREATE TABLE portal_links (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel text NOT NULL,
    allowed_origin text NOT NULL,
    token_hash bytea NOT NULL UNIQUE,
    csrf_token text NOT NULL,
    created_by uuid REFERENCES api_keys (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
COMMENT ON TABLE portal_links IS
    'Customer portal links (POST /v1/portal-links): one channel of one tenant, usable until '
    'expires_at, framed only by allowed_origin. The URL carries the token; only its sha256 '
    'is kept. Expired rows are purged by the purge_expired task.';
CREATE INDEX portal_links_expires_idx ON portal_links (expires_at);
"""

INDEXES = """
SET LOCAL lock_timeout = '5s';
CREATE FUNCTION eventgate_tenant_channels(tenant uuid, channels text[])
RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(tenant::text || ' ' || c), '{}') FROM unnest(channels) AS c
$$;
COMMENT ON FUNCTION eventgate_tenant_channels(uuid, text[]) IS
    'Tenant and channel pairs of an endpoint: a portal finds one customer''s endpoints by '
    'containment through endpoints_channel_idx, without walking the tenant''s others.';
CREATE INDEX endpoints_channel_idx ON endpoints
    USING gin (eventgate_tenant_channels(tenant_id, channels)) WHERE deleted_at IS NULL;
-- Every event of a tenant in id (= time) order, acknowledged ones too: the console's event
-- search and its per-minute figures.
CREATE INDEX events_tenant_idx ON events (tenant_id, id);
"""

steps = [
    step(SESSIONS, "DROP TABLE portal_links; DROP TABLE console_sessions;"),
    step(
        INDEXES,
        "DROP INDEX events_tenant_idx; DROP INDEX endpoints_channel_idx;"
        " DROP FUNCTION eventgate_tenant_channels(uuid, text[]);",
    ),
]
