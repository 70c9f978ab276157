"""eventgate_event_keys(), rewritten in PL/pgSQL (0035), gives exactly the keys the SQL version
of 0008 gave, for every shape of type and channels."""

from __future__ import annotations

import ast
import uuid

import psycopg
import pytest

from db.migrate import MIGRATIONS_DIR


def _sql_version() -> str:
    """0008's definition, which 0035's rollback restores, under a session-local name."""
    source = (MIGRATIONS_DIR / "0035.event-keys-in-plpgsql.py").read_text()
    rollback = next(
        ast.literal_eval(node.value)
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "ROLLBACK"
    )
    definition = rollback.split("COMMENT ON FUNCTION")[0]
    return definition.replace(
        "CREATE OR REPLACE FUNCTION eventgate_event_keys", "CREATE FUNCTION pg_temp.sql_event_keys"
    )


TYPES = ["order.paid", "x", "a.b.c.d", "", "*", "a.*", "a..b", ".lead", "trail.", "ü.ö.ß", "a b.c"]
CHANNELS = [[], ["eu"], ["eu", "us-east", "ü"], [""]]


@pytest.mark.parametrize("channels", CHANNELS)
def test_the_plpgsql_keys_are_the_sql_versions(database_url: str, channels: list[str]) -> None:
    tenant = uuid.uuid4()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(_sql_version())
        for event_type in TYPES:
            row = conn.execute(
                "SELECT eventgate_event_keys(%(t)s, %(type)s, %(ch)s::text[]),"
                " pg_temp.sql_event_keys(%(t)s, %(type)s, %(ch)s::text[])",
                {"t": tenant, "type": event_type, "ch": channels},
            ).fetchone()
            assert row is not None
            new, old = row
            assert sorted(new) == sorted(old), event_type
            if "" not in channels:  # the empty channel, given, repeats every key in both
                assert len(new) == len(set(new)), event_type


def test_the_keys_function_is_plpgsql(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang"
            " WHERE p.proname = 'eventgate_event_keys'"
        ).fetchone()
    assert row == ("plpgsql",)
