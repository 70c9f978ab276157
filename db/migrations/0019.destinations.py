"""Destinations: an endpoint is a kind of way out (`http`, or a message broker) with a config.
The config as the API shows it (credentials left out) is stored as it is; the whole config,
credentials included, is sealed like any secret. Operators see the kind of failing endpoints."""

from yoyo import step

__depends__ = {"0018.delivery-engine"}

APPLY = """
SET LOCAL lock_timeout = '5s';
ALTER TABLE endpoints
    ADD COLUMN kind text NOT NULL DEFAULT 'http',
    ADD COLUMN config jsonb NOT NULL DEFAULT '{"kind": "http"}'::jsonb,
    ADD COLUMN config_encrypted bytea;
COMMENT ON COLUMN endpoints.kind IS
    'How deliveries leave: http (a signed POST to url), or a broker (rabbitmq, nats, redis).';
COMMENT ON COLUMN endpoints.config IS
    'The destination''s settings as the API shows them: every credential left out.';
COMMENT ON COLUMN endpoints.config_encrypted IS
    'The whole destination config, credentials included, AES-256-GCM sealed; NULL when the '
    'config holds nothing beyond the public part (a plain HTTP endpoint).';
CREATE INDEX endpoints_tenant_kind_idx ON endpoints (tenant_id, kind, id)
    WHERE deleted_at IS NULL;

DROP VIEW eventgate_failing_endpoints;
CREATE VIEW eventgate_failing_endpoints AS
SELECT e.tenant_id, e.id AS endpoint_id, e.kind, e.url, e.is_active, e.disabled_reason,
       e.consecutive_failures, e.failing_since, e.circuit_open_until > now() AS circuit_open
FROM endpoints e
WHERE e.deleted_at IS NULL
  AND (e.consecutive_failures > 0 OR NOT e.is_active OR e.circuit_open_until > now())
ORDER BY e.failing_since NULLS LAST;
COMMENT ON VIEW eventgate_failing_endpoints IS
    'Endpoints failing now, with an open circuit, or disabled, longest-failing first.';
"""

ROLLBACK = """
DROP VIEW eventgate_failing_endpoints;
CREATE VIEW eventgate_failing_endpoints AS
SELECT e.tenant_id, e.id AS endpoint_id, e.url, e.is_active, e.disabled_reason,
       e.consecutive_failures, e.failing_since, e.circuit_open_until > now() AS circuit_open
FROM endpoints e
WHERE e.deleted_at IS NULL
  AND (e.consecutive_failures > 0 OR NOT e.is_active OR e.circuit_open_until > now())
ORDER BY e.failing_since NULLS LAST;
DROP INDEX endpoints_tenant_kind_idx;
ALTER TABLE endpoints DROP COLUMN kind, DROP COLUMN config, DROP COLUMN config_encrypted;
"""

steps = [step(APPLY, ROLLBACK)]
