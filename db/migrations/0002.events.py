"""Events, daily range partitions and the functions that rotate them."""

from yoyo import step

__depends__ = {"0001.tenants-and-api-keys"}

# One step per block: these hold $$ bodies that yoyo's SQL-file splitter would cut apart.
PARTITION_FUNCTIONS = """
SET LOCAL lock_timeout = '5s';

CREATE FUNCTION eventgate_create_daily_partitions(parent regclass, first_day date, days integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    day date;
    partition_name text;
    created integer := 0;
BEGIN
    -- Serialise concurrent callers (API fallback, rotation task, migrations).
    PERFORM pg_advisory_xact_lock(hashtext('eventgate_partitions'));
    FOR day IN SELECT generate_series(first_day, first_day + days, interval '1 day')::date LOOP
        partition_name := format('%s_p%s', (SELECT relname FROM pg_class WHERE oid = parent),
                                 to_char(day, 'YYYYMMDD'));
        IF to_regclass(quote_ident(partition_name)) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                           partition_name, parent,
                           day::timestamp AT TIME ZONE 'UTC',
                           (day + 1)::timestamp AT TIME ZONE 'UTC');
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END
$$;
COMMENT ON FUNCTION eventgate_create_daily_partitions(regclass, date, integer) IS
    'Creates the missing daily partitions <table>_pYYYYMMDD of parent for first_day .. first_day + days (UTC).';

CREATE FUNCTION eventgate_drop_daily_partitions(parent regclass, before_day date)
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

EVENTS = """
SET LOCAL lock_timeout = '5s';

CREATE TABLE events (
    id uuid NOT NULL,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    source text NOT NULL,
    event_type text NOT NULL,
    payload jsonb NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}',
    idempotency_key text,
    correlation_id text,
    priority text NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high')),
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'acknowledged')),
    acknowledged_at timestamptz,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
COMMENT ON TABLE events IS
    'Ingested events, range-partitioned daily on created_at (UTC), which equals the UUIDv7 time of id, '
    'so a lookup by id prunes to one partition. Pending rows form the pull inbox.';
-- The inbox: pending events of a tenant in id (= time) order.
CREATE INDEX events_inbox_idx ON events (tenant_id, id) WHERE status = 'pending';

-- A fresh database accepts events at once: yesterday (clock skew) to a week ahead.
DO $$ BEGIN
    PERFORM eventgate_create_daily_partitions('events', (now() AT TIME ZONE 'UTC')::date - 1, 8);
END $$;

CREATE VIEW eventgate_partitions AS
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
COMMENT ON VIEW eventgate_partitions IS
    'Every partition of the partitioned Eventgate tables with its bounds, estimated rows and size.';

CREATE VIEW eventgate_inbox AS
SELECT tenant_id, source, event_type, count(*) AS pending_events,
       min(created_at) AS oldest_pending_at
FROM events WHERE status = 'pending'
GROUP BY tenant_id, source, event_type;
COMMENT ON VIEW eventgate_inbox IS 'Pending (unacknowledged) events per tenant, source and type.';
"""

steps = [
    step(
        PARTITION_FUNCTIONS,
        "DROP FUNCTION eventgate_drop_daily_partitions(regclass, date);"
        "DROP FUNCTION eventgate_create_daily_partitions(regclass, date, integer);",
    ),
    step(EVENTS, "DROP VIEW eventgate_inbox; DROP VIEW eventgate_partitions; DROP TABLE events;"),
]
