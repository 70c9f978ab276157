"""Drop request_logs' (tenant_id, id) index: since 0027 the primary key leads with the same
columns (tenant_id, id, created_at) and serves a tenant's pages, while every answered request
wrote its row into both."""

from yoyo import step

__depends__ = {"0033.busy-engines"}

APPLY = "DROP INDEX request_logs_tenant_idx;"

ROLLBACK = "CREATE INDEX request_logs_tenant_idx ON request_logs (tenant_id, id);"

steps = [step(APPLY, ROLLBACK)]
