"""pg_stat_statements for the benches: load it, count afresh, and print what each unit of work
cost in SQL."""

from __future__ import annotations

import psycopg

from db.embedded import EmbeddedPostgres


def track_statements(server: EmbeddedPostgres) -> str:
    """Load pg_stat_statements (the server restarts) so each step can show its SQL cost."""
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        conn.execute("ALTER SYSTEM SET pg_stat_statements.track_planning = on")
    server.stop()
    url = server.start()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return url


def reset_statements(url: str) -> None:
    """Start counting statements afresh."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")


def print_statements(url: str, delivered: int, top: int = 8) -> None:
    """The statements that took the most server time, per delivered event."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT calls, total_exec_time + total_plan_time,"
            " regexp_replace(query, '\\s+', ' ', 'g'), plans"
            " FROM pg_stat_statements ORDER BY 2 DESC"
        ).fetchall()
    per = max(1, delivered)
    total_ms = sum(row[1] for row in rows)
    calls = sum(row[0] for row in rows)
    print(
        f"{'':18}SQL per delivery: {calls / per:.1f} statements, "
        f"{total_ms / per:.3f} ms planning and executing"
    )
    # A statement planned at most calls has no generic plan: Postgres plans it afresh each time.
    for n_calls, ms, query, plans in rows[:top]:
        print(
            f"{'':20}{n_calls / per:5.2f} x {ms / max(1, n_calls):6.3f} ms  "
            f"planned {plans / max(1, n_calls):4.0%}  {query[:80]}"
        )
