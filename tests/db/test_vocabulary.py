"""The status and queue vocabularies of core/ are exactly what the database's CHECKs allow,
and the partial indexes use the same 'unfinished' predicate the queries spell."""

from __future__ import annotations

import re

import psycopg
import pytest

from core.queues import DELIVERY_QUEUES, QUEUE_OF_PRIORITY
from core.vocabulary import (
    DELIVERY_STATUSES,
    EVENT_STATUSES,
    PRIORITIES,
    UNFINISHED_DELIVERY_STATUSES,
)

CHECK_OF = """
SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
WHERE c.conrelid = %s::regclass AND c.contype = 'c' AND pg_get_constraintdef(c.oid) LIKE %s
"""


def allowed_words(conn: psycopg.Connection, table: str, column: str) -> set[str]:
    (definition,) = conn.execute(CHECK_OF, (table, f"%({column} = ANY%")).fetchone()
    return set(re.findall(r"'([^']+)'::text", definition))


@pytest.mark.parametrize(
    ("table", "column", "words"),
    [
        ("deliveries", "status", DELIVERY_STATUSES),
        ("deliveries", "queue", DELIVERY_QUEUES),
        ("events", "status", EVENT_STATUSES),
        ("events", "priority", PRIORITIES),
    ],
)
def test_checks_mirror_the_vocabulary(database_url, table, column, words):
    with psycopg.connect(database_url) as conn:
        assert allowed_words(conn, table, column) == set(words)


def test_every_priority_has_a_queue():
    assert set(QUEUE_OF_PRIORITY) == set(PRIORITIES)
    assert set(QUEUE_OF_PRIORITY.values()) == set(DELIVERY_QUEUES)


def test_partial_indexes_use_the_unfinished_predicate(database_url):
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'deliveries'"
            " AND indexname IN ('deliveries_due_idx', 'deliveries_unfinished_idx')"
        ).fetchall()
    assert len(rows) == 2
    for _name, definition in rows:
        words = re.findall(r"'([^']+)'::text", definition.split("WHERE", 1)[1])
        assert tuple(words) == UNFINISHED_DELIVERY_STATUSES
