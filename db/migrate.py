"""Apply, roll back and report the yoyo migrations in db/migrations."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from yoyo import get_backend, read_migrations

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def yoyo_uri(database_url: str) -> str:
    """Turn a postgresql:// URL into yoyo's postgresql+psycopg:// URI (a multi-host URL
    becomes the host it reaches: yoyo takes one)."""
    parts = urlsplit(single_host(database_url))
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError("the database URL must start with postgresql://")
    return urlunsplit(parts._replace(scheme="postgresql+psycopg"))


def single_host(database_url: str) -> str:
    """A multi-host URL (`h1:p1,h2:p2`, as for a Patroni cluster) as the one host and port a
    connection to it reaches now (its target_session_attrs decide which); others unchanged."""
    parts = urlsplit(database_url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    if "," not in hosts:
        return database_url
    with psycopg.connect(database_url) as conn:
        reached = f"{conn.info.host}:{conn.info.port}"
    netloc = f"{credentials}@{reached}" if credentials else reached
    return urlunsplit(parts._replace(netloc=netloc))


@contextlib.contextmanager
def _backend(database_url: str) -> Iterator[Any]:
    backend = get_backend(yoyo_uri(database_url))
    try:
        yield backend
    finally:
        # yoyo keeps its connection open, which would block CREATE DATABASE ... TEMPLATE.
        backend.connection.close()


def apply(database_url: str) -> list[str]:
    """Apply every pending migration; return the ids applied."""
    with _backend(database_url) as backend, backend.lock():
        pending = backend.to_apply(read_migrations(str(MIGRATIONS_DIR)))
        backend.apply_migrations(pending)
    return [m.id for m in pending]


def rollback(database_url: str, count: int | None = None) -> list[str]:
    """Roll back the newest `count` applied migrations (all when None); return their ids."""
    with _backend(database_url) as backend, backend.lock():
        applied = backend.to_rollback(read_migrations(str(MIGRATIONS_DIR)))
        if count is not None:
            applied = applied[:count]
        backend.rollback_migrations(applied)
    return [m.id for m in applied]


def status(database_url: str) -> list[tuple[str, bool]]:
    """Every known migration id with whether it is applied."""
    migrations = read_migrations(str(MIGRATIONS_DIR))
    with _backend(database_url) as backend:
        applied = {m.id for m in backend.to_rollback(migrations)}
    return [(m.id, m.id in applied) for m in migrations]
