"""Transformations: a JavaScript handler per endpoint (applied to each delivery before it is
signed) and per source (applied before the event is stored), with every version kept."""

from yoyo import step

__depends__ = {"0024.event-stream"}

APPLY = """
SET LOCAL lock_timeout = '5s';
ALTER TABLE endpoints ADD COLUMN transformation text,
    ADD COLUMN transformation_version integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN endpoints.transformation IS
    'The current JavaScript handler(webhook) run on each delivery before it is signed (NULL: '
    'none); its history is in transformation_versions.';
ALTER TABLE sources ADD COLUMN transformation text,
    ADD COLUMN transformation_version integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN sources.transformation IS
    'The current JavaScript handler(webhook) run on each trigger request before its event is '
    'stored (NULL: none); its history is in transformation_versions.';

CREATE TABLE transformation_versions (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL,
    owner_kind text NOT NULL CHECK (owner_kind IN ('endpoint', 'source')),
    owner_id uuid NOT NULL,
    version integer NOT NULL,
    code text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, owner_kind, owner_id, version)
);
COMMENT ON TABLE transformation_versions IS
    'Every version of every endpoint''s and source''s transformation, numbered from 1 per owner '
    '(code NULL: the transformation was removed). Who changed it is in audit_logs.';
"""

ROLLBACK = """
DROP TABLE transformation_versions;
ALTER TABLE sources DROP COLUMN transformation, DROP COLUMN transformation_version;
ALTER TABLE endpoints DROP COLUMN transformation, DROP COLUMN transformation_version;
"""

steps = [step(APPLY, ROLLBACK)]
