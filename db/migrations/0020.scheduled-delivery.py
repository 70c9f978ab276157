"""Scheduled delivery: an event may name the time its deliveries go out (deliver_at), and a
delivery that never went because its event was deleted ends `cancelled`."""

from yoyo import step

__depends__ = {"0019.destinations"}

APPLY = """
SET LOCAL lock_timeout = '5s';
ALTER TABLE events ADD COLUMN deliver_at timestamptz;
COMMENT ON COLUMN events.deliver_at IS
    'When the event''s deliveries go out (NULL: at once). The event is stored, and in the '
    'inbox, from created_at.';
ALTER TABLE deliveries ADD COLUMN deliver_at timestamptz;
COMMENT ON COLUMN deliveries.deliver_at IS
    'The event''s deliver_at: the first try is not before it (an enabled endpoint releases '
    'its parked deliveries no earlier), and an ordered endpoint is not held by it until then.';
-- The new vocabulary is a superset of the old one: re-checking the rows finds none outside.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check
    CHECK (status IN ('pending', 'delivering', 'succeeded', 'failed', 'dead', 'cancelled'));
-- Retention keeps the days that hold deliveries still waiting for their time.
CREATE INDEX deliveries_scheduled_idx ON deliveries (created_at)
    WHERE deliver_at IS NOT NULL AND status IN ('pending', 'delivering', 'failed');
"""

ROLLBACK = """
DROP INDEX deliveries_scheduled_idx;
UPDATE deliveries SET status = 'dead' WHERE status = 'cancelled';
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check
    CHECK (status IN ('pending', 'delivering', 'succeeded', 'failed', 'dead'));
ALTER TABLE deliveries DROP COLUMN deliver_at;
ALTER TABLE events DROP COLUMN deliver_at;
"""

steps = [step(APPLY, ROLLBACK)]
