"""Views for the questions an operator asks at 3 a.m. (docs/operations.md shows each)."""

from yoyo import step

__depends__ = {"0010.audit-logs"}

VIEWS = """
CREATE VIEW eventgate_queue_backlog AS
SELECT queue, count(*) AS due,
       COALESCE(EXTRACT(epoch FROM now() - min(next_attempt_at)), 0)::float8 AS oldest_due_seconds
FROM deliveries
WHERE status IN ('pending', 'delivering', 'failed') AND next_attempt_at <= now()
GROUP BY queue;
COMMENT ON VIEW eventgate_queue_backlog IS
    'Per queue: deliveries due now and how long the oldest has waited (the metric '
    'eventgate_delivery_backlog_seconds; served by deliveries_due_idx).';

CREATE VIEW eventgate_stuck_deliveries AS
SELECT d.tenant_id, d.id AS delivery_id, d.endpoint_id, d.queue, d.attempts,
       d.next_attempt_at AS lease_ended_at,
       EXTRACT(epoch FROM now() - d.next_attempt_at)::float8 AS overdue_seconds
FROM deliveries d
WHERE d.status = 'delivering' AND d.next_attempt_at < now()
ORDER BY d.next_attempt_at;
COMMENT ON VIEW eventgate_stuck_deliveries IS
    'Deliveries leased by a worker whose lease ran out (the worker died or hangs): a live '
    'worker claims them again; rows that stay here mean no worker serves their queue.';

CREATE VIEW eventgate_failing_endpoints AS
SELECT e.tenant_id, e.id AS endpoint_id, e.url, e.is_active, e.disabled_reason,
       e.consecutive_failures, e.failing_since, e.circuit_open_until > now() AS circuit_open
FROM endpoints e
WHERE e.deleted_at IS NULL
  AND (e.consecutive_failures > 0 OR NOT e.is_active OR e.circuit_open_until > now())
ORDER BY e.failing_since NULLS LAST;
COMMENT ON VIEW eventgate_failing_endpoints IS
    'Endpoints failing now, with an open circuit, or disabled, longest-failing first.';

CREATE VIEW eventgate_busiest_rate_limits AS
SELECT bucket, window_seconds, window_start, hits
FROM rate_limit_counters
WHERE window_start + make_interval(secs => window_seconds) > now()
ORDER BY hits DESC
LIMIT 50;
COMMENT ON VIEW eventgate_busiest_rate_limits IS
    'The 50 fullest rate-limit counters of the current windows (key:, ip:, prefix:, source:).';
"""

steps = [
    step(
        VIEWS,
        "DROP VIEW eventgate_busiest_rate_limits; DROP VIEW eventgate_failing_endpoints;"
        "DROP VIEW eventgate_stuck_deliveries; DROP VIEW eventgate_queue_backlog;",
    )
]
