"""The yoyo migrations apply, roll back completely, and apply again to the same schema."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import psycopg

from db import migrate

SCHEMA_QUERY = """
SELECT 'column', table_name || '.' || column_name || ' ' || data_type FROM information_schema.columns
WHERE table_schema = 'public' AND table_name NOT LIKE '\\_yoyo%%' AND table_name NOT LIKE 'yoyo%%'
UNION ALL
SELECT 'index', indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
  AND tablename NOT LIKE '%%yoyo%%'
UNION ALL
SELECT 'function', p.oid::regprocedure::text FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
UNION ALL
SELECT 'view', viewname || ' ' || definition FROM pg_views WHERE schemaname = 'public'
ORDER BY 1, 2
"""


# Partitions are named by day (events_p20261205): a run that crosses midnight UTC migrates
# again with the next day's partitions, so the day is not part of the schema compared.
PARTITION_DAY = re.compile(r"_p\d{8}\b")


def schema(url: str) -> list[tuple[str, str]]:
    """The schema's objects, with partition days left out of their names."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(SCHEMA_QUERY).fetchall()
    return sorted((kind, PARTITION_DAY.sub("_p<day>", text)) for kind, text in rows)


def test_apply_rollback_apply_gives_the_same_schema(database_url):
    migrated = schema(database_url)
    kinds = {kind for kind, _ in migrated}
    assert kinds == {"column", "index", "function", "view"}
    assert all(applied for _, applied in migrate.status(database_url))

    every = migrate.status(database_url)
    rolled_back = migrate.rollback(database_url)
    assert len(rolled_back) == len(every) >= 4
    assert schema(database_url) == []
    assert not any(applied for _, applied in migrate.status(database_url))

    migrate.apply(database_url)
    assert schema(database_url) == migrated


def test_every_table_has_a_comment(database_url):
    with psycopg.connect(database_url) as conn:
        uncommented = conn.execute(
            """
            SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('p', 'v', 'r')
              AND NOT c.relispartition AND c.relname NOT LIKE 'procrastinate%%'
              AND c.relname NOT LIKE '%%yoyo%%'
              AND obj_description(c.oid, 'pg_class') IS NULL
            """
        ).fetchall()
    assert uncommented == []


def test_migrations_are_append_only():
    """A migration on main never changes: a database already past it would not see the edit.

    db/migrations/SHA256SUMS lists every migration file with its checksum and only grows: a
    new migration adds its line (`sha256sum 0005.* >> SHA256SUMS`), an existing line never
    changes."""
    folder = Path(migrate.MIGRATIONS_DIR)
    listed = dict(
        reversed(line.split(maxsplit=1))
        for line in (folder / "SHA256SUMS").read_text().splitlines()
        if line.strip()
    )
    present = {p.name for p in folder.iterdir() if p.suffix in (".sql", ".py")}
    assert present == set(listed), "every migration file is listed in SHA256SUMS, and only those"
    changed = [
        name
        for name, digest in listed.items()
        if hashlib.sha256((folder / name).read_bytes()).hexdigest() != digest
    ]
    assert changed == [], "migrations already on main changed: put the change in a new one"
