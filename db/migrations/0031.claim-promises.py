"""The delivery engine's promises to claim again: while it claims by itself, ingest skips the
NOTIFY that would only wake it for nothing."""

from yoyo import step

__depends__ = {"0030.attempt-headers"}

APPLY = """
CREATE UNLOGGED TABLE delivery_claim_promises (
    queue text PRIMARY KEY,
    claims_at timestamptz NOT NULL
);
COMMENT ON TABLE delivery_claim_promises IS
    'Per delivery queue, a time at or after which a busy delivery engine will claim again '
    '(written by its claims while it claims without being woken). A delivery committed before '
    'then is found without a NOTIFY, so ingest skips announcing it; a stale time only means '
    'ingest announces again. Unlogged: emptied by a crash, which costs a few NOTIFYs.';
COMMENT ON COLUMN delivery_claim_promises.claims_at IS
    'An engine claims this queue again at this time or later (the latest promise wins).';
"""

steps = [step(APPLY, "DROP TABLE delivery_claim_promises;")]
