"""Rate limits: the operator's tiers, per-key route overrides, and counters shared by every
API process."""

from yoyo import step

__depends__ = {"0005.key-rotation-chain"}

TABLES = """
SET LOCAL lock_timeout = '5s';

CREATE TABLE rate_limit_tiers (
    name text PRIMARY KEY,
    per_minute integer CHECK (per_minute > 0),
    per_hour integer CHECK (per_hour > 0),
    per_day integer CHECK (per_day > 0),
    burst integer CHECK (burst > 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE rate_limit_tiers IS
    'Instance-wide request limits per API key, set by the operator (eventgate rate-limits '
    'set-tier). NULL means no limit for that window; burst is the most requests in one second.';
INSERT INTO rate_limit_tiers (name, per_minute, per_hour, per_day, burst) VALUES
    ('free', 60, 1000, 10000, 10),
    ('standard', 600, 20000, 200000, 50),
    ('premium', 6000, 200000, 2000000, 200),
    ('unlimited', NULL, NULL, NULL, NULL);

UPDATE api_keys SET rate_limit_tier = 'standard'
WHERE rate_limit_tier NOT IN (SELECT name FROM rate_limit_tiers);
ALTER TABLE api_keys ALTER COLUMN rate_limit_tier SET DEFAULT 'standard';
ALTER TABLE api_keys ADD CONSTRAINT api_keys_rate_limit_tier_fkey
    FOREIGN KEY (rate_limit_tier) REFERENCES rate_limit_tiers (name) ON UPDATE CASCADE;

CREATE TABLE rate_limit_overrides (
    api_key_id uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    route text NOT NULL,
    per_minute integer CHECK (per_minute > 0),
    per_hour integer CHECK (per_hour > 0),
    per_day integer CHECK (per_day > 0),
    PRIMARY KEY (api_key_id, route)
);
COMMENT ON TABLE rate_limit_overrides IS
    'Per-key limits for one route (`POST /v1/events`), counted apart from the key''s tier. '
    'Through the API a tenant may only set limits below its tier; the operator may set any.';

CREATE UNLOGGED TABLE rate_limit_counters (
    bucket text NOT NULL,
    window_seconds integer NOT NULL,
    window_start timestamptz NOT NULL,
    hits integer NOT NULL,
    PRIMARY KEY (bucket, window_seconds, window_start)
);
COMMENT ON TABLE rate_limit_counters IS
    'Requests admitted per bucket (key:<id>, key:<id>:<route>, ip:<address>, prefix:<key '
    'prefix>) per fixed window, shared by every API process. UNLOGGED: a crash forgets the '
    'current windows, which only lets a little more through once. Purged every 15 minutes.';

CREATE UNLOGGED TABLE rate_limit_refusals (
    day date NOT NULL,
    kind text NOT NULL,
    refused bigint NOT NULL,
    PRIMARY KEY (day, kind)
);
COMMENT ON TABLE rate_limit_refusals IS
    'How many requests were answered 429, per UTC day and kind of bucket (key, route, ip, '
    'prefix). UNLOGGED.';
"""

TAKE = r"""
CREATE FUNCTION eventgate_rate_limit_take(
    buckets text[], windows integer[], limits integer[], wanted integer DEFAULT 1)
RETURNS TABLE (allowed boolean, tightest integer, remaining integer, reset_seconds integer,
               first_end_seconds double precision)
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
    hits_now integer;
    starts timestamptz;
    left_now integer;
    resets integer;
    refused_kind text;
    expires double precision;
BEGIN
    allowed := true;
    expires := 'infinity';
    BEGIN
        FOR i IN 1 .. coalesce(cardinality(buckets), 0) LOOP
            starts := to_timestamp(floor(extract(epoch FROM now()) / windows[i]) * windows[i]);
            INSERT INTO rate_limit_counters AS c (bucket, window_seconds, window_start, hits)
            VALUES (buckets[i], windows[i], starts, wanted)
            ON CONFLICT ON CONSTRAINT rate_limit_counters_pkey DO UPDATE SET hits = c.hits + wanted
            RETURNING c.hits INTO hits_now;
            left_now := limits[i] - hits_now;
            resets := greatest(1, ceil(extract(epoch FROM starts - now()) + windows[i]))::integer;
            expires := least(expires, extract(epoch FROM starts - now()) + windows[i]);
            IF left_now < 0 OR remaining IS NULL OR left_now < remaining THEN
                tightest := i;
                remaining := greatest(left_now, 0);
                reset_seconds := resets;
            END IF;
            IF left_now < 0 THEN
                allowed := false;
                -- Undo every count of this request: a refused request takes nothing.
                RAISE EXCEPTION USING ERRCODE = 'EG429', DETAIL = split_part(buckets[i], ':', 1)
                    || CASE WHEN buckets[i] ~ '^key:[^:]+:' THEN '-route' ELSE '' END;
            END IF;
        END LOOP;
    EXCEPTION WHEN SQLSTATE 'EG429' THEN
        GET STACKED DIAGNOSTICS refused_kind = PG_EXCEPTION_DETAIL;
        INSERT INTO rate_limit_refusals AS r (day, kind, refused)
        VALUES ((now() AT TIME ZONE 'UTC')::date, refused_kind, 1)
        ON CONFLICT ON CONSTRAINT rate_limit_refusals_pkey DO UPDATE SET refused = r.refused + 1;
    END;
    first_end_seconds := expires;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION eventgate_rate_limit_take(text[], integer[], integer[], integer) IS
    'Count `wanted` requests in each (bucket, window) unless one of them would go over its '
    'limit, in which case nothing is counted. Returns whether they were admitted, the tightest '
    'window (its position in the arrays, what remains, seconds until it resets) and the seconds '
    'until the first of the windows ends. Row locks make it exact across processes.';
"""

steps = [
    step(
        TABLES,
        "DROP TABLE rate_limit_refusals; DROP TABLE rate_limit_counters;"
        " DROP TABLE rate_limit_overrides;"
        " ALTER TABLE api_keys DROP CONSTRAINT api_keys_rate_limit_tier_fkey;"
        " ALTER TABLE api_keys ALTER COLUMN rate_limit_tier SET DEFAULT 'default';"
        " DROP TABLE rate_limit_tiers;",
    ),
    step(TAKE, "DROP FUNCTION eventgate_rate_limit_take(text[], integer[], integer[], integer);"),
]
