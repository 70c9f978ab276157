"""api_keys.replaced_by: the key a rotation issued, so a key rotates once and a revocation
reaches the keys rotated from it."""

from yoyo import step

__depends__ = {"0004.webhooks"}

APPLY = """
SET LOCAL lock_timeout = '5s';
ALTER TABLE api_keys ADD COLUMN replaced_by uuid REFERENCES api_keys (id) ON DELETE SET NULL;
COMMENT ON COLUMN api_keys.replaced_by IS
    'The key a rotation issued in place of this one (a key rotates once); revoking this key '
    'revokes that one too, and so on down the chain.';
CREATE INDEX api_keys_replaced_by_idx ON api_keys (replaced_by) WHERE replaced_by IS NOT NULL;
"""

steps = [
    step(
        APPLY, "DROP INDEX api_keys_replaced_by_idx; ALTER TABLE api_keys DROP COLUMN replaced_by;"
    )
]
