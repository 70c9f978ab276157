"""Drop the (tenant_id, id) indexes of events and deliveries: since 0027 each primary key leads
with the same columns (tenant_id, id, created_at) and serves the same scans, index-only
included, while every row version of both tables was written into both indexes."""

from yoyo import step

__depends__ = {"0031.claim-promises"}

APPLY = """
DROP INDEX deliveries_tenant_idx;
DROP INDEX events_tenant_idx;
"""

ROLLBACK = """
CREATE INDEX deliveries_tenant_idx ON deliveries (tenant_id, id);
CREATE INDEX events_tenant_idx ON events (tenant_id, id);
"""

steps = [step(APPLY, ROLLBACK)]
