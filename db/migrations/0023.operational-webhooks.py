"""Operational webhooks: endpoints a tenant names operational receive Eventgate's own events
(eventgate.*), and a notice table rate-limits the ones that can come in floods."""

from yoyo import step

__depends__ = {"0022.task-runs"}

APPLY = """
SET LOCAL lock_timeout = '5s';
ALTER TABLE endpoints ADD COLUMN operational boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN endpoints.operational IS
    'Receives Eventgate''s own events (eventgate.* types: endpoint disabled, circuit opened or '
    'closed, dead letters, source rejections, expiring keys, failed schedule runs) and no '
    'others.';
CREATE INDEX endpoints_operational_idx ON endpoints (tenant_id)
    WHERE operational AND deleted_at IS NULL;

CREATE TABLE operational_notices (
    subject_id uuid NOT NULL,
    kind text NOT NULL,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    unreported integer NOT NULL DEFAULT 0,
    last_sent_at timestamptz,
    PRIMARY KEY (subject_id, kind)
);
COMMENT ON TABLE operational_notices IS
    'Per subject (an endpoint, a source, a key) and kind of operational event: when one was '
    'last sent and how many happened since. One is sent per window at most; it carries the count.';
"""

ROLLBACK = """
DROP TABLE operational_notices;
DROP INDEX endpoints_operational_idx;
ALTER TABLE endpoints DROP COLUMN operational;
"""

steps = [step(APPLY, ROLLBACK)]
