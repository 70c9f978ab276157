"""The headers of each try: what was sent (credentials redacted) and what the receiver
answered with, for the console's attempt page."""

from yoyo import step

__depends__ = {"0029.delivery-stats"}

APPLY = """
SET LOCAL lock_timeout = '5s';
ALTER TABLE delivery_attempts ADD COLUMN request_headers jsonb, ADD COLUMN response_headers jsonb;
COMMENT ON COLUMN delivery_attempts.request_headers IS
    'The headers the try sent (Authorization and the endpoint''s own header values, which may '
    'be credentials, redacted); NULL for a try that sent nothing or a broker destination.';
COMMENT ON COLUMN delivery_attempts.response_headers IS
    'The headers of the answer (at most 50, each value cut at 500 characters); NULL without one.';
"""

steps = [
    step(
        APPLY,
        "ALTER TABLE delivery_attempts DROP COLUMN request_headers, DROP COLUMN response_headers;",
    )
]
