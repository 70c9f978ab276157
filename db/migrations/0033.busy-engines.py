"""The delivery engine's promise becomes a lease on being busy: while its claims find several
due it promises to keep claiming (`busy_until`), and the claim that finds fewer withdraws the
promise at once and is followed by one more claim a moment later."""

from yoyo import step

__depends__ = {"0032.redundant-tenant-indexes"}

APPLY = """
ALTER TABLE delivery_claim_promises RENAME COLUMN claims_at TO busy_until;
COMMENT ON TABLE delivery_claim_promises IS
    'Per delivery queue, until when the listening delivery engine promises to keep claiming it '
    'by itself (written by each of its claims: one that finds several due promises, one that '
    'finds fewer withdraws the promise and claims once more a moment later). A delivery '
    'committed while the promise stands, by an ingest quicker than that moment, is found '
    'without a NOTIFY, so ingest skips announcing it; a stale promise only means ingest '
    'announces again. Unlogged: emptied by a crash, which costs a few NOTIFYs.';
COMMENT ON COLUMN delivery_claim_promises.busy_until IS
    'The engine claims this queue by itself until this time, unless a claim withdraws it first.';
"""

ROLLBACK = """
ALTER TABLE delivery_claim_promises RENAME COLUMN busy_until TO claims_at;
COMMENT ON TABLE delivery_claim_promises IS
    'Per delivery queue, a time at or after which a busy delivery engine will claim again '
    '(written by its claims while it claims without being woken). A delivery committed before '
    'then is found without a NOTIFY, so ingest skips announcing it; a stale time only means '
    'ingest announces again. Unlogged: emptied by a crash, which costs a few NOTIFYs.';
COMMENT ON COLUMN delivery_claim_promises.claims_at IS
    'An engine claims this queue again at this time or later (the latest promise wins).';
"""

steps = [step(APPLY, ROLLBACK)]
