"""The trace an event's deliveries continue: the W3C traceparent of its fan-out span."""

from yoyo import step

__depends__ = {"0025.transformations"}

# No default: adding the column rewrites no stored event.
APPLY = """
SET LOCAL lock_timeout = '5s';
ALTER TABLE events ADD COLUMN traceparent text;
COMMENT ON COLUMN events.traceparent IS
    'The W3C traceparent of the span that stored the event (NULL while tracing is off): each '
    'delivery attempt''s span is its child, so one trace runs from the producer to the receiver.';
"""

ROLLBACK = """
ALTER TABLE events DROP COLUMN traceparent;
"""

steps = [step(APPLY, ROLLBACK)]
