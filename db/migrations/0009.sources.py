"""Inbound sources: third-party webhooks received at /v1/triggers/{token}, verified, recorded."""

from yoyo import step

__depends__ = {"0008.indexed-subscriptions"}

SOURCES = """
SET LOCAL lock_timeout = '5s';
CREATE TABLE sources (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name text NOT NULL,
    token text NOT NULL UNIQUE,
    event_type text,
    event_type_header text,
    event_type_pointer text,
    event_type_prefix text NOT NULL DEFAULT '',
    keep_headers text[] NOT NULL DEFAULT '{}',
    verification jsonb NOT NULL,
    secret text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name),
    CHECK (num_nonnulls(event_type, event_type_header, event_type_pointer) = 1)
);
COMMENT ON TABLE sources IS
    'Inbound webhook sources. A request to /v1/triggers/{token} is checked by verification '
    '(scheme and its non-secret settings; secret is write-only), becomes an event whose source '
    'is name and whose type is event_type, or the event_type_header header, or the string at '
    'the JSON pointer event_type_pointer (after event_type_prefix); keep_headers are copied to '
    'its metadata.';
CREATE INDEX sources_tenant_idx ON sources (tenant_id, id);

CREATE TABLE source_receipts (
    source_id uuid NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    dedup_key text NOT NULL,
    event_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (source_id, dedup_key)
);
COMMENT ON TABLE source_receipts IS
    'One row per accepted trigger request that carried a provider delivery id or an '
    'Idempotency-Key (dedup_key), committed with its event: a redelivery finds it and answers '
    'with event_id instead of storing a second event. Purged after expires_at.';
CREATE INDEX source_receipts_expires_idx ON source_receipts (expires_at);

CREATE TABLE source_rejections (
    id uuid PRIMARY KEY,
    source_id uuid NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    status_code integer NOT NULL,
    reason text NOT NULL,
    client_ip text NOT NULL,
    header_names text[] NOT NULL,
    body_size integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE source_rejections IS
    'Refused trigger requests of a source (bad signature, too old, too large, unsupported '
    'type...): when, why, from where, which headers (names only) and how large; never a '
    'secret or a body. The newest 100 per source are kept.';
CREATE INDEX source_rejections_source_idx ON source_rejections (source_id, id);
"""

steps = [
    step(SOURCES, "DROP TABLE source_rejections; DROP TABLE source_receipts; DROP TABLE sources;")
]
