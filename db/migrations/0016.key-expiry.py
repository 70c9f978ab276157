"""Keys nearing expiry, found by index: the metric of keys expiring within 7 days is read at
every scrape."""

from yoyo import step

__depends__ = {"0015.secrets-at-rest"}

APPLY = """
SET LOCAL lock_timeout = '5s';
CREATE INDEX api_keys_expiring_idx ON api_keys (expires_at)
    WHERE revoked_at IS NULL AND expires_at IS NOT NULL;
"""

steps = [step(APPLY, "DROP INDEX api_keys_expiring_idx;")]
