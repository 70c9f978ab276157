"""The operator's views answer their question, and docs/operations.md documents every one."""

from __future__ import annotations

import re

import psycopg

from tests.helpers import ROOT, add_endpoint, auth, event_body, make_key

DOC = ROOT / "docs" / "operations.md"


def _rows(database_url: str, query: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(query).fetchall()


async def test_the_views_answer_their_questions(client, database_url, receiver):
    key = await make_key(database_url)
    endpoint = await add_endpoint(client, key, receiver, "hooks")
    for _ in range(3):
        await client.post("/v1/events", json=event_body(), headers=auth(key))
    [(queue, due, oldest)] = _rows(database_url, "SELECT * FROM eventgate_queue_backlog")
    assert (queue, due) == ("default", 3)
    assert oldest >= 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE deliveries SET status = 'delivering', next_attempt_at = now() - interval '5 min'"
            " WHERE id = (SELECT id FROM deliveries LIMIT 1)"
        )
        conn.execute(
            "UPDATE endpoints SET consecutive_failures = 3, failing_since = now() WHERE id = %s",
            [endpoint["id"]],
        )
    stuck = _rows(database_url, "SELECT overdue_seconds FROM eventgate_stuck_deliveries")
    assert len(stuck) == 1
    assert stuck[0][0] >= 299
    failing = _rows(database_url, "SELECT endpoint_id::text FROM eventgate_failing_endpoints")
    assert failing == [(endpoint["id"],)]
    busiest = _rows(database_url, "SELECT bucket, hits FROM eventgate_busiest_rate_limits")
    assert any(bucket.startswith("key:") and hits >= 1 for bucket, hits in busiest)


def test_every_view_is_documented_and_commented(database_url):
    views = _rows(
        database_url,
        "SELECT c.relname, obj_description(c.oid) FROM pg_class c"
        " WHERE c.relkind = 'v' AND c.relname LIKE 'eventgate_%'",
    )
    documented = set(re.findall(r"\beventgate_[a-z_]+", DOC.read_text()))
    assert len(views) >= 9
    for name, comment in views:
        assert comment, f"{name} has no comment"
        assert name in documented, f"{name} is not in docs/operations.md"
