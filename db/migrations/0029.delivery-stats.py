"""Delivery statistics for the console's charts: per tenant, endpoint and minute, the tries
that succeeded and failed and a histogram of their latency, rolled up from delivery_attempts
every minute (off the delivery path); a row per tenant and minute sums all its endpoints."""

from yoyo import step

__depends__ = {"0028.console-users"}

APPLY = """
SET LOCAL lock_timeout = '5s';
CREATE TABLE delivery_stats (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    endpoint_id uuid NOT NULL,
    period text NOT NULL CHECK (period IN ('minute', 'hour')),
    starts_at timestamptz NOT NULL,
    succeeded integer NOT NULL,
    failed integer NOT NULL,
    latency_buckets integer[] NOT NULL,
    PRIMARY KEY (tenant_id, endpoint_id, period, starts_at)
);
COMMENT ON TABLE delivery_stats IS
    'Tries per tenant, endpoint and minute or hour: succeeded, failed, and how many took at '
    'most each bound of core/delivery_stats.py:LATENCY_BOUNDS_MS (the last bucket: longer). '
    'endpoint_id 00000000-0000-0000-0000-000000000000 sums every endpoint of the tenant. '
    'Rolled up from delivery_attempts by the roll_up_delivery_stats task; minutes are kept 2 '
    'days, hours 35.';
CREATE INDEX delivery_stats_expiry_idx ON delivery_stats (period, starts_at);

CREATE TABLE delivery_stats_progress (
    id integer PRIMARY KEY CHECK (id = 1),
    rolled_up_to uuid NOT NULL
);
COMMENT ON TABLE delivery_stats_progress IS
    'How far delivery_attempts are rolled up into delivery_stats: every attempt id below '
    'rolled_up_to is counted (one row).';
INSERT INTO delivery_stats_progress VALUES (1, '00000000-0000-0000-0000-000000000000');
"""

steps = [step(APPLY, "DROP TABLE delivery_stats_progress; DROP TABLE delivery_stats;")]
