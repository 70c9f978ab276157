"""Console users: people who sign in with an email and a password (argon2id), a role, an
optional TOTP second factor; one-time invitations; the browsers that signed in before (so a
flood of guesses at an account never locks its owner out); sessions opened by a user or by
an API key; and the person, not only the key, named in audit entries."""

from yoyo import step

__depends__ = {"0027.tenant-keys"}

USERS = """
SET LOCAL lock_timeout = '5s';
CREATE TABLE console_users (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL,
    email text NOT NULL CHECK (email = lower(email) AND length(email) <= 254),
    password_hash text NOT NULL,
    role text NOT NULL CHECK (role IN ('viewer', 'developer', 'admin')),
    totp_secret_encrypted bytea,
    totp_last_step bigint,
    disabled_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, email)
);
COMMENT ON TABLE console_users IS
    'People who sign in to the web console: email (lower case), argon2id hash of the password, '
    'role (viewer, developer, admin: mapped onto API scopes), the TOTP secret sealed with '
    'EVENTGATE_ENCRYPTION_KEYS when a second factor is on (totp_last_step refuses a code '
    'twice). A disabled user cannot sign in and its sessions end at once.';
-- Sign-in finds an email before the tenant is known (one person may be in several tenants).
CREATE INDEX console_users_email_idx ON console_users (email);

CREATE TABLE console_invitations (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL,
    email text NOT NULL CHECK (email = lower(email) AND length(email) <= 254),
    role text NOT NULL CHECK (role IN ('viewer', 'developer', 'admin')),
    token_hash bytea NOT NULL,
    invited_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    accepted_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, invited_by) REFERENCES console_users (tenant_id, id)
        ON DELETE SET NULL (invited_by)
);
COMMENT ON TABLE console_invitations IS
    'One-time links an admin sends to add a person: the sha256 of the link''s token (never the '
    'token), the email and role it grants, until expires_at; accepted_at is set once, by the '
    'first use. Purged by purge_expired a day after they expire.';
CREATE INDEX console_invitations_token_hash_idx ON console_invitations (token_hash);
CREATE INDEX console_invitations_expires_idx ON console_invitations (expires_at);

CREATE TABLE console_devices (
    tenant_id uuid NOT NULL,
    user_id uuid NOT NULL,
    token_hash bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, user_id, token_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES console_users (tenant_id, id) ON DELETE CASCADE
);
COMMENT ON TABLE console_devices IS
    'Browsers a user signed in from (the sha256 of a long-lived cookie): while an account is '
    'over its limit of failed sign-ins from everywhere, these still may try, each under a '
    'limit of its own, so a guesser elsewhere never locks the owner out.';
CREATE INDEX console_devices_expires_idx ON console_devices (expires_at);

ALTER TABLE console_sessions ALTER COLUMN key_id DROP NOT NULL,
    ADD COLUMN user_id uuid,
    ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN client_ip text,
    ADD COLUMN user_agent text,
    ADD CONSTRAINT console_sessions_user_id_fkey FOREIGN KEY (tenant_id, user_id)
        REFERENCES console_users (tenant_id, id) ON DELETE CASCADE,
    ADD CONSTRAINT console_sessions_one_actor CHECK (num_nonnulls(key_id, user_id) = 1);
CREATE INDEX console_sessions_user_idx ON console_sessions (tenant_id, user_id, expires_at);
COMMENT ON TABLE console_sessions IS
    'Signed-in web console sessions: the sha256 of the session cookie (never the cookie), the '
    'user (acting with its role''s scopes) or the API key (acting with its scopes) it was '
    'opened by, ending when the user is disabled or the key revoked; the CSRF token every form '
    'carries; where it was opened from. Deleted at sign-out or when revoked from the sessions '
    'page; expired rows are purged by the purge_expired task.';
"""

USERS_ROLLBACK = """
DELETE FROM console_sessions WHERE user_id IS NOT NULL;
DROP INDEX console_sessions_user_idx;
ALTER TABLE console_sessions DROP CONSTRAINT console_sessions_one_actor,
    DROP CONSTRAINT console_sessions_user_id_fkey,
    DROP COLUMN user_id, DROP COLUMN id, DROP COLUMN client_ip, DROP COLUMN user_agent,
    ALTER COLUMN key_id SET NOT NULL;
DROP TABLE console_devices;
DROP TABLE console_invitations;
DROP TABLE console_users;
"""

# The person joins the hash: rows without one hash exactly as before, so existing chains
# still verify.
AUDIT = r"""
SET LOCAL lock_timeout = '5s';
ALTER TABLE audit_logs ADD COLUMN actor_user_id uuid, ADD COLUMN actor_email text;
COMMENT ON COLUMN audit_logs.actor_email IS
    'The console user who acted (with actor_user_id), when a person did; NULL for API keys.';
CREATE OR REPLACE FUNCTION eventgate_audit_content(a audit_logs) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT convert_to((jsonb_build_array(
        a.tenant_id, a.seq, a.id,
        (extract(epoch FROM a.created_at) * 1000000)::bigint,
        a.actor_key_id, a.actor_key_prefix, a.action, a.resource_type, a.resource_id,
        a.before, a.after, a.client_ip, a.user_agent, a.request_id)
        || CASE WHEN a.actor_user_id IS NULL AND a.actor_email IS NULL THEN '[]'::jsonb
                ELSE jsonb_build_array(a.actor_user_id, a.actor_email) END)::text, 'UTF8')
$$;
"""

AUDIT_ROLLBACK = r"""
CREATE OR REPLACE FUNCTION eventgate_audit_content(a audit_logs) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT convert_to(jsonb_build_array(
        a.tenant_id, a.seq, a.id,
        (extract(epoch FROM a.created_at) * 1000000)::bigint,
        a.actor_key_id, a.actor_key_prefix, a.action, a.resource_type, a.resource_id,
        a.before, a.after, a.client_ip, a.user_agent, a.request_id)::text, 'UTF8')
$$;
ALTER TABLE audit_logs DROP COLUMN actor_user_id, DROP COLUMN actor_email;
"""

steps = [step(USERS, USERS_ROLLBACK), step(AUDIT, AUDIT_ROLLBACK)]
