"""Fan-out and inbox filters by index: subscription keys, channels and payload filters."""

from yoyo import step

__depends__ = {"0007.idempotency-keys"}

FUNCTIONS = r"""
-- Keys carry the tenant so one tenant's lookups never walk another's entries; a space
-- separates the parts (channels and endpoint patterns cannot hold one, so keys never collide).
CREATE FUNCTION eventgate_subscription_keys(tenant uuid, patterns text[], channels text[])
RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_agg(tenant::text || ' ' || p || ' ' || c)
    FROM unnest(CASE WHEN cardinality(patterns) = 0 THEN ARRAY['*'] ELSE patterns END) AS p,
         unnest(CASE WHEN cardinality(channels) = 0 THEN ARRAY[''] ELSE channels END) AS c
$$;
COMMENT ON FUNCTION eventgate_subscription_keys(uuid, text[], text[]) IS
    'The keys an endpoint subscribes under: tenant, one type pattern (empty = `*`) and one '
    'channel (none = the empty string, which every event carries).';

CREATE FUNCTION eventgate_event_keys(tenant uuid, event_type text, channels text[])
RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    WITH parts AS (SELECT string_to_array(event_type, '.') AS a)
    SELECT array_agg(tenant::text || ' ' || k || ' ' || c)
    FROM (
        SELECT '*' AS k
        UNION SELECT event_type
        UNION SELECT array_to_string(a[1:i], '.') || '.*'
              FROM parts, generate_series(1, cardinality(a) - 1) AS i
    ) AS patterns,
    unnest(ARRAY[''] || channels) AS c
$$;
COMMENT ON FUNCTION eventgate_event_keys(uuid, text, text[]) IS
    'The subscription keys that take an event: its exact type, each `prefix.*`, and `*`, each '
    'with the empty channel and each of the event''s channels.';
"""

ENDPOINTS = """
SET LOCAL lock_timeout = '5s';
ALTER TABLE endpoints
    ADD COLUMN channels text[] NOT NULL DEFAULT '{}',
    ADD COLUMN filter jsonb,
    ADD COLUMN filter_path jsonpath,
    ADD COLUMN filter_vars jsonb,
    ADD COLUMN subscription_keys text[] NOT NULL
        GENERATED ALWAYS AS (eventgate_subscription_keys(tenant_id, event_types, channels)) STORED;
COMMENT ON COLUMN endpoints.channels IS
    'When set, only events carrying one of these channels are delivered (and match event_types).';
COMMENT ON COLUMN endpoints.filter IS
    'The payload filter as given ($eq, $in, $gt, ...); filter_path and filter_vars are its '
    'compiled jsonpath and bound values, evaluated by the fan-out statement.';
COMMENT ON COLUMN endpoints.subscription_keys IS
    'Derived from tenant_id, event_types and channels: fan-out finds endpoints by overlap '
    'with eventgate_event_keys() through endpoints_subscription_idx.';
-- fastupdate off: a pending list would be scanned whole by every ingest until vacuumed.
CREATE INDEX endpoints_subscription_idx ON endpoints USING gin (subscription_keys)
    WITH (fastupdate = off) WHERE deleted_at IS NULL;
"""

EVENTS = """
SET LOCAL lock_timeout = '5s';
ALTER TABLE events ADD COLUMN channels text[] NOT NULL DEFAULT '{}';
COMMENT ON COLUMN events.channels IS
    'Channels the event is addressed to: endpoints with channels receive only events sharing one.';
CREATE INDEX events_inbox_source_idx ON events (tenant_id, source, id) WHERE status = 'pending';
CREATE INDEX events_inbox_type_idx ON events (tenant_id, event_type, id)
    WHERE status = 'pending';
-- One btree per channel position (an event carries at most 10, each once): a channel's
-- inbox is then ten ordered index ranges merged, index-served at any density, which a GIN
-- index (unordered: every match fetched, then sorted) is not.
DO $$ BEGIN
    FOR k IN 1..10 LOOP
        EXECUTE format('CREATE INDEX events_inbox_channel%s_idx ON events '
                       '(tenant_id, (channels[%s]), id) '
                       'WHERE status = ''pending'' AND channels[%s] IS NOT NULL', k, k, k);
    END LOOP;
END $$;
"""

steps = [
    step(
        FUNCTIONS,
        "DROP FUNCTION eventgate_event_keys(uuid, text, text[]);"
        "DROP FUNCTION eventgate_subscription_keys(uuid, text[], text[]);",
    ),
    step(
        ENDPOINTS,
        "DROP INDEX endpoints_subscription_idx;"
        "ALTER TABLE endpoints DROP COLUMN subscription_keys, DROP COLUMN filter_vars,"
        " DROP COLUMN filter_path, DROP COLUMN filter, DROP COLUMN channels;",
    ),
    step(
        EVENTS,
        "DO $$ BEGIN FOR k IN 1..10 LOOP"
        " EXECUTE format('DROP INDEX events_inbox_channel%s_idx', k); END LOOP; END $$;"
        "DROP INDEX events_inbox_type_idx;"
        "DROP INDEX events_inbox_source_idx; ALTER TABLE events DROP COLUMN channels;",
    ),
]
