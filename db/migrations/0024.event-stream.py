"""The live event stream: each event's commit position, and the streams open now."""

from yoyo import step

__depends__ = {"0023.operational-webhooks"}

APPLY = """
SET LOCAL lock_timeout = '5s';
-- No default while adding: a volatile default would rewrite every stored event.
ALTER TABLE events ADD COLUMN stream_xid xid8;
ALTER TABLE events ALTER COLUMN stream_xid SET DEFAULT pg_current_xact_id();
COMMENT ON COLUMN events.stream_xid IS
    'The id of the transaction that stored the event. Streams follow (stream_xid, id), and only '
    'below the oldest transaction still running: unlike id order, that order never lets an '
    'event commit behind a position a stream has passed. Null for events stored before streams.';
-- The stream of a tenant's pending events in commit order.
CREATE INDEX events_stream_idx ON events (tenant_id, stream_xid, id) WHERE status = 'pending';

CREATE TABLE event_streams (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key_id uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    filters jsonb NOT NULL DEFAULT '{}',
    client_address text,
    opened_at timestamptz NOT NULL DEFAULT now(),
    seen_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE event_streams IS
    'Open GET /v1/events/stream connections, one row each, refreshed (seen_at) by the API '
    'process serving it every heartbeat; a row not seen for three heartbeats belongs to a '
    'process that died and counts for nothing. Bounds the streams per key; ingest notifies '
    'a tenant''s streams only while it has one.';
CREATE INDEX event_streams_key_idx ON event_streams (key_id, seen_at);
CREATE INDEX event_streams_tenant_idx ON event_streams (tenant_id, seen_at);
"""

ROLLBACK = """
DROP TABLE event_streams;
DROP INDEX events_stream_idx;
ALTER TABLE events DROP COLUMN stream_xid;
"""

steps = [step(APPLY, ROLLBACK)]
