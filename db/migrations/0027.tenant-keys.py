"""Every key of a tenant's data leads with tenant_id: the schema Citus can distribute by it.

Primary keys, unique keys and the foreign keys between tenant tables gain tenant_id; the child
tables that had only their parent's id (source receipts and rejections, endpoint rate windows,
rate-limit overrides) gain the column itself. Credentials found before the tenant is known (an
API key's prefix, a trigger token, a portal link's or console session's token hash) keep a
plain index for that lookup: their random bits (64 to 256) make them unique in practice, and a
collision could only refuse a credential, never open another tenant's data (each lookup also
checks the secret or hash it was given).
"""

from yoyo import step

__depends__ = {"0026.event-traces"}

# Each table's new primary key, replacing the one named <table>_pkey.
PRIMARY_KEYS = {
    "api_keys": "tenant_id, id",
    "events": "tenant_id, id, created_at",
    "deliveries": "tenant_id, id, created_at",
    "delivery_attempts": "tenant_id, id, created_at",
    "request_logs": "tenant_id, id, created_at",
    "endpoints": "tenant_id, id",
    "sources": "tenant_id, id",
    "schedules": "tenant_id, id",
    "schedule_runs": "tenant_id, id",
    "portal_links": "tenant_id, id",
    "event_streams": "tenant_id, id",
    "console_sessions": "tenant_id, token_hash",
    "operational_notices": "tenant_id, subject_id, kind",
    "source_receipts": "tenant_id, source_id, dedup_key",
    "source_rejections": "tenant_id, id",
    "endpoint_rate_windows": "tenant_id, endpoint_id, window_start",
    "rate_limit_overrides": "tenant_id, api_key_id, route",
}

# Child tables given their parent's tenant_id: (table, parent, the child's column for it).
CHILDREN = [
    ("source_receipts", "sources", "source_id"),
    ("source_rejections", "sources", "source_id"),
    ("endpoint_rate_windows", "endpoints", "endpoint_id"),
    ("rate_limit_overrides", "api_keys", "api_key_id"),
]

ADD_TENANT_TO_CHILDREN = "\n".join(
    f"""
ALTER TABLE {child} ADD COLUMN tenant_id uuid;
UPDATE {child} c SET tenant_id = p.tenant_id FROM {parent} p WHERE p.id = c.{column};
DELETE FROM {child} WHERE tenant_id IS NULL;
ALTER TABLE {child} ALTER COLUMN tenant_id SET NOT NULL;
COMMENT ON COLUMN {child}.tenant_id IS 'The tenant of the {parent} row this belongs to.';
"""
    for child, parent, column in CHILDREN
)

DROP_FOREIGN_KEYS = """
ALTER TABLE api_keys DROP CONSTRAINT api_keys_replaced_by_fkey,
    DROP CONSTRAINT api_keys_created_by_fkey;
ALTER TABLE rate_limit_overrides DROP CONSTRAINT rate_limit_overrides_api_key_id_fkey;
ALTER TABLE source_receipts DROP CONSTRAINT source_receipts_source_id_fkey;
ALTER TABLE source_rejections DROP CONSTRAINT source_rejections_source_id_fkey;
ALTER TABLE console_sessions DROP CONSTRAINT console_sessions_key_id_fkey;
ALTER TABLE portal_links DROP CONSTRAINT portal_links_created_by_fkey;
ALTER TABLE schedule_runs DROP CONSTRAINT schedule_runs_schedule_id_fkey;
ALTER TABLE event_streams DROP CONSTRAINT event_streams_key_id_fkey;
"""

REPLACE_PRIMARY_KEYS = "\n".join(
    f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey;\n"
    f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({columns});"
    for table, columns in PRIMARY_KEYS.items()
)

# Unique keys: with tenant_id, and a plain index where a credential is looked up by itself.
REPLACE_UNIQUE_KEYS = """
ALTER TABLE api_keys DROP CONSTRAINT api_keys_prefix_key,
    ADD CONSTRAINT api_keys_prefix_key UNIQUE (tenant_id, prefix);
CREATE INDEX api_keys_prefix_idx ON api_keys (prefix);
ALTER TABLE sources DROP CONSTRAINT sources_token_key,
    ADD CONSTRAINT sources_token_key UNIQUE (tenant_id, token);
CREATE INDEX sources_token_idx ON sources (token);
ALTER TABLE portal_links DROP CONSTRAINT portal_links_token_hash_key,
    ADD CONSTRAINT portal_links_token_hash_key UNIQUE (tenant_id, token_hash);
CREATE INDEX portal_links_token_hash_idx ON portal_links (token_hash);
CREATE INDEX console_sessions_token_hash_idx ON console_sessions (token_hash);
DROP INDEX schedule_runs_tick_key;
CREATE UNIQUE INDEX schedule_runs_tick_key ON schedule_runs (tenant_id, schedule_id, tick)
    WHERE trigger = 'cron';
"""

# SET NULL names its column: tenant_id itself is never nulled.
ADD_FOREIGN_KEYS = """
ALTER TABLE api_keys
    ADD CONSTRAINT api_keys_replaced_by_fkey FOREIGN KEY (tenant_id, replaced_by)
        REFERENCES api_keys (tenant_id, id) ON DELETE SET NULL (replaced_by),
    ADD CONSTRAINT api_keys_created_by_fkey FOREIGN KEY (tenant_id, created_by)
        REFERENCES api_keys (tenant_id, id) ON DELETE SET NULL (created_by);
ALTER TABLE rate_limit_overrides ADD CONSTRAINT rate_limit_overrides_api_key_id_fkey
    FOREIGN KEY (tenant_id, api_key_id) REFERENCES api_keys (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE source_receipts ADD CONSTRAINT source_receipts_source_id_fkey
    FOREIGN KEY (tenant_id, source_id) REFERENCES sources (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE source_rejections ADD CONSTRAINT source_rejections_source_id_fkey
    FOREIGN KEY (tenant_id, source_id) REFERENCES sources (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE console_sessions ADD CONSTRAINT console_sessions_key_id_fkey
    FOREIGN KEY (tenant_id, key_id) REFERENCES api_keys (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE portal_links ADD CONSTRAINT portal_links_created_by_fkey
    FOREIGN KEY (tenant_id, created_by) REFERENCES api_keys (tenant_id, id)
        ON DELETE SET NULL (created_by);
ALTER TABLE schedule_runs ADD CONSTRAINT schedule_runs_schedule_id_fkey
    FOREIGN KEY (tenant_id, schedule_id) REFERENCES schedules (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE event_streams ADD CONSTRAINT event_streams_key_id_fkey
    FOREIGN KEY (tenant_id, key_id) REFERENCES api_keys (tenant_id, id) ON DELETE CASCADE;
"""

APPLY = (
    "SET LOCAL lock_timeout = '30s';"
    + ADD_TENANT_TO_CHILDREN
    + DROP_FOREIGN_KEYS
    + REPLACE_PRIMARY_KEYS
    + REPLACE_UNIQUE_KEYS
    + ADD_FOREIGN_KEYS
)

OLD_PRIMARY_KEYS = {
    table: columns.removeprefix("tenant_id, ") for table, columns in PRIMARY_KEYS.items()
} | {"console_sessions": "token_hash", "operational_notices": "subject_id, kind"}

OLD_FOREIGN_KEYS = """
ALTER TABLE api_keys
    ADD CONSTRAINT api_keys_replaced_by_fkey FOREIGN KEY (replaced_by)
        REFERENCES api_keys (id) ON DELETE SET NULL,
    ADD CONSTRAINT api_keys_created_by_fkey FOREIGN KEY (created_by)
        REFERENCES api_keys (id) ON DELETE SET NULL;
ALTER TABLE rate_limit_overrides ADD CONSTRAINT rate_limit_overrides_api_key_id_fkey
    FOREIGN KEY (api_key_id) REFERENCES api_keys (id) ON DELETE CASCADE;
ALTER TABLE source_receipts ADD CONSTRAINT source_receipts_source_id_fkey
    FOREIGN KEY (source_id) REFERENCES sources (id) ON DELETE CASCADE;
ALTER TABLE source_rejections ADD CONSTRAINT source_rejections_source_id_fkey
    FOREIGN KEY (source_id) REFERENCES sources (id) ON DELETE CASCADE;
ALTER TABLE console_sessions ADD CONSTRAINT console_sessions_key_id_fkey
    FOREIGN KEY (key_id) REFERENCES api_keys (id) ON DELETE CASCADE;
ALTER TABLE portal_links ADD CONSTRAINT portal_links_created_by_fkey
    FOREIGN KEY (created_by) REFERENCES api_keys (id) ON DELETE SET NULL;
ALTER TABLE schedule_runs ADD CONSTRAINT schedule_runs_schedule_id_fkey
    FOREIGN KEY (schedule_id) REFERENCES schedules (id) ON DELETE CASCADE;
ALTER TABLE event_streams ADD CONSTRAINT event_streams_key_id_fkey
    FOREIGN KEY (key_id) REFERENCES api_keys (id) ON DELETE CASCADE;
"""

ROLLBACK = (
    DROP_FOREIGN_KEYS
    + """
DROP INDEX api_keys_prefix_idx, sources_token_idx, portal_links_token_hash_idx,
    console_sessions_token_hash_idx, schedule_runs_tick_key;
ALTER TABLE api_keys DROP CONSTRAINT api_keys_prefix_key,
    ADD CONSTRAINT api_keys_prefix_key UNIQUE (prefix);
ALTER TABLE sources DROP CONSTRAINT sources_token_key,
    ADD CONSTRAINT sources_token_key UNIQUE (token);
ALTER TABLE portal_links DROP CONSTRAINT portal_links_token_hash_key,
    ADD CONSTRAINT portal_links_token_hash_key UNIQUE (token_hash);
CREATE UNIQUE INDEX schedule_runs_tick_key ON schedule_runs (schedule_id, tick)
    WHERE trigger = 'cron';
"""
    + "\n".join(
        f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey;\n"
        f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({columns});"
        for table, columns in OLD_PRIMARY_KEYS.items()
    )
    + "\n".join(f"ALTER TABLE {child} DROP COLUMN tenant_id;" for child, _, _ in CHILDREN)
    + OLD_FOREIGN_KEYS
)

steps = [step(APPLY, ROLLBACK)]
