"""Request logs: one row per answered authenticated request, written off the request path in
batches (COPY), kept EVENTGATE_REQUEST_LOG_RETENTION_DAYS (7) in daily partitions."""

from yoyo import step

__depends__ = {"0011.operations-views"}

TABLE = """
SET LOCAL lock_timeout = '5s';
CREATE TABLE request_logs (
    id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    key_id uuid,
    method text NOT NULL,
    route text NOT NULL,
    status integer NOT NULL,
    latency_ms real NOT NULL,
    request_id text,
    client_ip text,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
COMMENT ON TABLE request_logs IS
    'One row per answered authenticated API request (method, route template, status, latency, '
    'key, request id, address), partitioned daily on created_at, the time inside the UUIDv7 '
    'id. Written in batches by each API process, never on the request path; under pressure '
    'or without a database the oldest unwritten rows are dropped (and counted), never a request.';
CREATE INDEX request_logs_tenant_idx ON request_logs (tenant_id, id);
SELECT eventgate_create_daily_partitions('request_logs'::regclass, current_date - 1, 8);
"""

steps = [step(TABLE, "DROP TABLE request_logs;")]
