"""The schema Citus could distribute by tenant_id, checked on the migrated catalog and on every
SQL statement in db/ (docs/scaling.md says how the tables would be laid out)."""

from __future__ import annotations

import importlib
import pkgutil
import re

import psycopg
import sqlglot
from sqlglot import exp

import db

# Where each table would live on Citus. Distributed by tenant_id: everything a tenant owns.
DISTRIBUTED = {
    "api_keys",
    "audit_checkpoints",
    "audit_heads",
    "audit_logs",
    "console_devices",
    "console_invitations",
    "console_sessions",
    "console_users",
    "deliveries",
    "delivery_attempts",
    "delivery_stats",
    "endpoint_rate_windows",
    "endpoints",
    "event_streams",
    "event_types",
    "events",
    "idempotency_keys",
    "operational_notices",
    "portal_links",
    "rate_limit_overrides",
    "request_logs",
    "schedule_runs",
    "schedules",
    "source_receipts",
    "source_rejections",
    "sources",
    "transformation_versions",
}
# Reference tables (a copy on every node): small, read by every tenant's statements.
REFERENCE = {"tenants", "rate_limit_tiers"}
# On the coordinator: no tenant's data. Rate-limit counters are keyed by key or client
# address (a guess at a key has no tenant yet), refusals are daily totals, task runs are the
# maintenance tasks' own, as is the charts' roll-up progress, and the delivery engines' claim
# promises are per queue; procrastinate's and yoyo's tables are matched by prefix below.
COORDINATOR = {
    "delivery_claim_promises",
    "delivery_stats_progress",
    "rate_limit_counters",
    "rate_limit_refusals",
    "task_runs",
    "task_totals",
}

# Statements that may leave tenant_id out, each for a reason.
CROSS_TENANT = {
    # Credentials found before the tenant is known (plain indexes on random values).
    "api_keys.GET_FOR_VERIFY",
    "console_users.OPEN_INVITATION",
    "portal_links.GET_LIVE",
    "sources.BY_TOKEN",
    # One person's email may be a user of several tenants: sign-in looks in each (bounded).
    "console_users.CREDENTIALS_BY_EMAIL",
    # Claims across tenants: on Citus they run per shard (FOR UPDATE SKIP LOCKED is
    # single-shard only), as docs/scaling.md says.
    "schedule_runs.CLAIM_DUE",
    # Maintenance: purges and trims of every tenant's expired rows, partition rotation.
    "audit.TRIM",
    "console_sessions.PURGE",
    "console_users.PURGE",
    "delivery_stats.PURGE",
    # The charts' roll-up reads every tenant's new attempts in id order (on Citus: per shard).
    "delivery_stats.NEXT_ATTEMPTS",
    "event_streams.FORGET_STALE",
    "idempotency.PURGE",
    "partitions.OLDEST_SCHEDULED",
    "portal_links.PURGE",
    "rate_windows.PURGE",
    "sources.PURGE_RECEIPTS",
    "sources.TRIM_REJECTIONS",
    # Operator-wide figures for /metrics.
    "metrics.ENDPOINTS",
    "metrics.KEYS",
}
# Re-encrypting every stored secret under a new key reads and rewrites every tenant's rows.
CROSS_TENANT_MODULES = {"sealed_secrets"}

TABLES = """
SELECT c.relname FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
"""

# Every primary key, unique constraint and unique index, and each one's columns.
UNIQUE_KEYS = """
SELECT c.relname, i.indexrelid::regclass::text,
       array(SELECT a.attname FROM unnest(i.indkey) k JOIN pg_attribute a
             ON a.attrelid = i.indrelid AND a.attnum = k)
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
WHERE i.indisunique AND c.relnamespace = 'public'::regnamespace AND NOT c.relispartition
"""

# Every foreign key between two tables, with its columns on both sides in order.
FOREIGN_KEYS = """
SELECT conname, conrelid::regclass::text, confrelid::regclass::text,
       array(SELECT a.attname FROM unnest(conkey) WITH ORDINALITY k(num, n)
             JOIN pg_attribute a ON a.attrelid = conrelid AND a.attnum = k.num ORDER BY k.n),
       array(SELECT a.attname FROM unnest(confkey) WITH ORDINALITY k(num, n)
             JOIN pg_attribute a ON a.attrelid = confrelid AND a.attnum = k.num ORDER BY k.n)
FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace
  AND NOT conrelid::regclass::text ~ '_p[0-9]{8}$'
"""


def _ours(table: str) -> bool:
    return not table.startswith(("procrastinate_", "_yoyo", "yoyo_"))


def test_every_table_is_placed_and_every_key_of_tenant_data_leads_with_tenant_id(database_url):
    with psycopg.connect(database_url) as conn:
        tables = {row[0] for row in conn.execute(TABLES) if _ours(row[0])}
        unique = conn.execute(UNIQUE_KEYS).fetchall()
        foreign = conn.execute(FOREIGN_KEYS).fetchall()
    assert tables == DISTRIBUTED | REFERENCE | COORDINATOR
    keys = {(table, index): columns for table, index, columns in unique if table in DISTRIBUTED}
    assert {table for table, _ in keys} == DISTRIBUTED  # each has its primary key at least
    without = sorted(index for (_, index), columns in keys.items() if "tenant_id" not in columns)
    assert without == []
    between = [(name, mine, theirs) for name, _, to, mine, theirs in foreign if to in DISTRIBUTED]
    assert between, "no foreign key between tenant tables was found"
    for name, mine, theirs in between:
        assert "tenant_id" in mine, name
        assert "tenant_id" in theirs, name
        assert mine.index("tenant_id") == theirs.index("tenant_id"), name


def statements() -> dict[str, str]:
    """Every SQL statement db/ defines (its modules' upper-case string constants)."""
    found = {}
    for module in pkgutil.iter_modules(db.__path__):
        namespace = vars(importlib.import_module(f"db.{module.name}"))
        for name, value in namespace.items():
            if name.isupper() and isinstance(value, str) and _is_dml(value):
                found[f"{module.name}.{name}"] = value
    return found


def _is_dml(text: str) -> bool:
    return re.search(r"\b(SELECT|INSERT|UPDATE|DELETE)\b", text) is not None


def untenanted_tables(sql: str) -> list[str]:
    """The distributed tables a statement reads or writes without naming their tenant_id in
    a WHERE or a join (or, for an INSERT's target, its column list)."""
    tree = sqlglot.parse_one(re.sub(r"%\(\w+\)s|%s", "NULL", sql), read="postgres")
    missing = []
    for table in tree.find_all(exp.Table):
        if table.name in DISTRIBUTED and not _names_tenant(table, tree):
            missing.append(table.alias_or_name)
    return missing


def _names_tenant(table: exp.Table, tree: exp.Expression) -> bool:
    scope = table.find_ancestor(exp.Select, exp.Update, exp.Delete, exp.Insert) or tree
    target = scope.this if isinstance(scope, exp.Insert) else None
    if isinstance(target, exp.Schema) and target.this is table:
        return "tenant_id" in [column.name for column in target.expressions]
    return any(
        column.name == "tenant_id"
        and column.table in ("", table.alias_or_name)
        and column.find_ancestor(exp.Where, exp.Join) is not None
        for column in scope.find_all(exp.Column)
    )


def test_every_statement_names_the_tenant_but_a_commented_few():
    found = statements()
    assert len(found) > 100
    assert CROSS_TENANT <= set(found), "an exempted statement no longer exists"
    offenders = {
        name: untenanted_tables(sql)
        for name, sql in found.items()
        if name not in CROSS_TENANT and name.split(".")[0] not in CROSS_TENANT_MODULES
    }
    assert {name: tables for name, tables in offenders.items() if tables} == {}
    exempted = {name: untenanted_tables(found[name]) for name in CROSS_TENANT}
    assert all(exempted.values()), "an exempted statement names its tenant: drop it from the list"


def test_the_check_sees_a_statement_that_forgets_the_tenant():
    assert untenanted_tables("SELECT * FROM endpoints WHERE id = %(id)s") == ["endpoints"]
    assert untenanted_tables("SELECT * FROM endpoints e JOIN deliveries d ON d.id = e.id") == [
        "e",
        "d",
    ]
    joined = "SELECT * FROM endpoints e JOIN deliveries d ON d.tenant_id = e.tenant_id"
    assert untenanted_tables(joined + " WHERE e.tenant_id = %(t)s") == []
    assert untenanted_tables("INSERT INTO endpoints (id, url) VALUES (%s, %s)") == ["endpoints"]
    assert untenanted_tables("INSERT INTO endpoints (tenant_id, id) VALUES (%s, %s)") == []
