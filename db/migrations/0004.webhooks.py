"""Event types, webhook endpoints, deliveries and their attempts (partitioned), and views."""

from yoyo import step

__depends__ = {"0003.procrastinate"}

UUIDV7 = """
SET LOCAL lock_timeout = '5s';

-- PostgreSQL 18 has uuidv7(); this keeps Eventgate running on older servers too.
CREATE FUNCTION eventgate_uuidv7(at timestamptz DEFAULT clock_timestamp())
RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send(floor(extract(epoch FROM at) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;
COMMENT ON FUNCTION eventgate_uuidv7(timestamptz) IS
    'A UUIDv7 whose time is `at` (millisecond precision), as Eventgate ids are.';

CREATE FUNCTION eventgate_event_type_matches(patterns text[], event_type text)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT cardinality(patterns) = 0
        OR event_type = ANY(patterns)
        OR EXISTS (SELECT 1 FROM unnest(patterns) AS p
                   WHERE p = '*' OR (right(p, 2) = '.*' AND starts_with(event_type, left(p, -1))))
$$;
COMMENT ON FUNCTION eventgate_event_type_matches(text[], text) IS
    'True when an endpoint filter (empty = all, exact names, `prefix.*`, `*`) takes event_type.';
"""

TABLES = """
SET LOCAL lock_timeout = '5s';

CREATE TABLE event_types (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    schema jsonb,
    archived boolean NOT NULL DEFAULT false,
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);
COMMENT ON TABLE event_types IS
    'Catalog of event types per tenant. When schema (a JSON Schema) is set, ingested payloads of '
    'that type are validated against it; version grows on every change. Archived types stay listed.';

CREATE TABLE endpoints (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url text NOT NULL,
    description text NOT NULL DEFAULT '',
    event_types text[] NOT NULL DEFAULT '{}',
    secret text NOT NULL,
    previous_secret text,
    previous_secret_expires_at timestamptz,
    is_active boolean NOT NULL DEFAULT true,
    disabled_reason text,
    rate_limit_per_s integer CHECK (rate_limit_per_s > 0),
    ordered boolean NOT NULL DEFAULT false,
    metadata jsonb NOT NULL DEFAULT '{}',
    consecutive_failures integer NOT NULL DEFAULT 0,
    failing_since timestamptz,
    circuit_open_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
COMMENT ON TABLE endpoints IS
    'Webhook subscriptions. event_types filters by name (empty = all, `prefix.*` wildcards). '
    'secret signs deliveries; previous_secret also signs until previous_secret_expires_at. '
    'A disabled endpoint (is_active false) keeps its deliveries waiting; consecutive_failures, '
    'failing_since and circuit_open_until are the circuit breaker. Deleted rows keep deleted_at.';
CREATE INDEX endpoints_tenant_idx ON endpoints (tenant_id, id) WHERE deleted_at IS NULL;

CREATE TABLE deliveries (
    id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    event_id uuid NOT NULL,
    endpoint_id uuid NOT NULL,
    queue text NOT NULL CHECK (queue IN ('critical', 'default', 'bulk')),
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivering', 'succeeded', 'failed', 'dead')),
    attempts integer NOT NULL DEFAULT 0,
    retry_index integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_status_code integer,
    last_error text,
    last_attempt_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
COMMENT ON TABLE deliveries IS
    'One row per (event, endpoint): the delivery work queue. Rows in pending, failed or delivering '
    'whose next_attempt_at has passed are due; claiming sets delivering and pushes next_attempt_at '
    'out by the lease, so a crashed worker''s rows fall due again. dead = out of tries. '
    'Partitioned daily on created_at (= the event''s time = the UUIDv7 time of id).';
-- Claiming: due rows per queue in time order.
CREATE INDEX deliveries_due_idx ON deliveries (queue, next_attempt_at)
    WHERE status IN ('pending', 'delivering', 'failed');
-- Ordered endpoints: the unfinished head of each endpoint.
CREATE INDEX deliveries_unfinished_idx ON deliveries (endpoint_id, event_id)
    WHERE status IN ('pending', 'delivering', 'failed');
CREATE INDEX deliveries_tenant_idx ON deliveries (tenant_id, id);
CREATE INDEX deliveries_event_idx ON deliveries (event_id);
CREATE INDEX deliveries_dead_idx ON deliveries (endpoint_id, id) WHERE status = 'dead';

CREATE TABLE delivery_attempts (
    id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    delivery_id uuid NOT NULL,
    endpoint_id uuid NOT NULL,
    attempt integer NOT NULL,
    status_code integer,
    response_body text,
    latency_ms integer NOT NULL,
    error text,
    started_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
COMMENT ON TABLE delivery_attempts IS
    'One row per HTTP try of a delivery: status code (NULL when no answer), the first 4 KiB of '
    'the response body, latency and error. Partitioned daily on created_at.';
CREATE INDEX delivery_attempts_delivery_idx ON delivery_attempts (delivery_id, id);

CREATE UNLOGGED TABLE endpoint_rate_windows (
    endpoint_id uuid NOT NULL,
    window_start timestamptz NOT NULL,
    sent integer NOT NULL,
    PRIMARY KEY (endpoint_id, window_start)
);
COMMENT ON TABLE endpoint_rate_windows IS
    'Deliveries handed out per endpoint per one-second window, shared by all workers to honour '
    'rate_limit_per_s. UNLOGGED: losing it in a crash only forgets a second of counting.';

DO $$ BEGIN
    PERFORM eventgate_create_daily_partitions('deliveries', (now() AT TIME ZONE 'UTC')::date - 1, 8);
    PERFORM eventgate_create_daily_partitions('delivery_attempts', (now() AT TIME ZONE 'UTC')::date - 1, 8);
END $$;
"""

KEEP_NEEDED_EVENTS = """
SET LOCAL lock_timeout = '5s';

CREATE OR REPLACE FUNCTION eventgate_drop_daily_partitions(parent regclass, before_day date)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped integer := 0;
    unfinished boolean;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('eventgate_partitions'));
    FOR part IN
        SELECT c.oid::regclass AS oid, c.relname
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = parent AND c.relname ~ '_p[0-9]{8}$'
    LOOP
        IF to_date(right(part.relname, 8), 'YYYYMMDD') < before_day THEN
            -- An event whose deliveries are not finished (an endpoint paused for longer than
            -- the event retention) is still needed: its day waits for the next rotation.
            IF parent = 'events'::regclass
               AND to_regclass('deliveries_p' || right(part.relname, 8)) IS NOT NULL THEN
                EXECUTE format(
                    'SELECT EXISTS (SELECT 1 FROM %I WHERE status IN (''pending'', ''delivering'', ''failed''))',
                    'deliveries_p' || right(part.relname, 8)) INTO unfinished;
                CONTINUE WHEN unfinished;
            END IF;
            EXECUTE format('DROP TABLE %s', part.oid);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END
$$;
COMMENT ON FUNCTION eventgate_drop_daily_partitions(regclass, date) IS
    'Drops the daily partitions of parent whose whole day lies before before_day (UTC), but keeps '
    'an events day whose deliveries are not all finished.';
"""

KEEP_NEEDED_EVENTS_ROLLBACK = """
CREATE OR REPLACE FUNCTION eventgate_drop_daily_partitions(parent regclass, before_day date)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('eventgate_partitions'));
    FOR part IN
        SELECT c.oid::regclass AS oid, c.relname
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = parent AND c.relname ~ '_p[0-9]{8}$'
    LOOP
        IF to_date(right(part.relname, 8), 'YYYYMMDD') < before_day THEN
            EXECUTE format('DROP TABLE %s', part.oid);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END
$$;
COMMENT ON FUNCTION eventgate_drop_daily_partitions(regclass, date) IS
    'Drops the daily partitions of parent whose whole day lies before before_day (UTC).';
"""

VIEWS = """
CREATE OR REPLACE VIEW eventgate_partitions AS
SELECT parent.relname AS parent_table,
       child.relname AS partition_name,
       pg_get_expr(child.relpartbound, child.oid) AS bounds,
       GREATEST(child.reltuples, 0)::bigint AS estimated_rows,
       pg_total_relation_size(child.oid) AS total_bytes
FROM pg_inherits i
JOIN pg_class parent ON parent.oid = i.inhparent
JOIN pg_class child ON child.oid = i.inhrelid
WHERE parent.relkind = 'p' AND parent.relname IN ('events', 'deliveries', 'delivery_attempts')
ORDER BY parent.relname, child.relname;

CREATE VIEW eventgate_delivery_queue AS
SELECT d.queue, d.status, count(*) AS deliveries,
       count(*) FILTER (WHERE d.next_attempt_at <= now()) AS due_now,
       min(d.next_attempt_at) AS next_attempt_at,
       min(d.created_at) AS oldest_created_at
FROM deliveries d
WHERE d.status IN ('pending', 'delivering', 'failed')
GROUP BY d.queue, d.status;
COMMENT ON VIEW eventgate_delivery_queue IS
    'Unfinished deliveries per queue and status: how many, how many are due now, the oldest. '
    'delivering rows past next_attempt_at belong to a worker that died; they are claimed again.';

CREATE VIEW eventgate_endpoint_health AS
SELECT e.tenant_id, e.id AS endpoint_id, e.url, e.is_active, e.disabled_reason,
       e.consecutive_failures, e.failing_since,
       e.circuit_open_until > now() AS circuit_open,
       (SELECT count(*) FROM deliveries d
        WHERE d.endpoint_id = e.id AND d.status IN ('pending', 'delivering', 'failed')) AS unfinished,
       (SELECT count(*) FROM deliveries d WHERE d.endpoint_id = e.id AND d.status = 'dead') AS dead
FROM endpoints e
WHERE e.deleted_at IS NULL;
COMMENT ON VIEW eventgate_endpoint_health IS
    'Each endpoint with its circuit-breaker state and counts of unfinished and dead deliveries.';

CREATE VIEW eventgate_dead_letters AS
SELECT d.tenant_id, d.endpoint_id, d.event_id, d.id AS delivery_id, d.attempts,
       d.last_status_code, d.last_error, d.last_attempt_at
FROM deliveries d WHERE d.status = 'dead';
COMMENT ON VIEW eventgate_dead_letters IS
    'Deliveries that used up every try; POST /v1/deliveries/{id}/retry or '
    '/v1/endpoints/{id}/recover sends them again.';
"""

VIEWS_ROLLBACK = """
DROP VIEW eventgate_dead_letters;
DROP VIEW eventgate_endpoint_health;
DROP VIEW eventgate_delivery_queue;
CREATE OR REPLACE VIEW eventgate_partitions AS
SELECT parent.relname AS parent_table,
       child.relname AS partition_name,
       pg_get_expr(child.relpartbound, child.oid) AS bounds,
       GREATEST(child.reltuples, 0)::bigint AS estimated_rows,
       pg_total_relation_size(child.oid) AS total_bytes
FROM pg_inherits i
JOIN pg_class parent ON parent.oid = i.inhparent
JOIN pg_class child ON child.oid = i.inhrelid
WHERE parent.relkind = 'p' AND parent.relname IN ('events')
ORDER BY parent.relname, child.relname;
"""

steps = [
    step(
        UUIDV7,
        "DROP FUNCTION eventgate_event_type_matches(text[], text);"
        "DROP FUNCTION eventgate_uuidv7(timestamptz);",
    ),
    step(
        TABLES,
        "DROP TABLE endpoint_rate_windows; DROP TABLE delivery_attempts; DROP TABLE deliveries;"
        "DROP TABLE endpoints; DROP TABLE event_types;",
    ),
    step(KEEP_NEEDED_EVENTS, KEEP_NEEDED_EVENTS_ROLLBACK),
    step(VIEWS, VIEWS_ROLLBACK),
]
