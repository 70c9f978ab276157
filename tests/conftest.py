"""A real PostgreSQL for the whole session, a migrated template, and a fresh copy per test."""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from litestar.testing import AsyncTestClient
from psycopg import sql

from app.main import create_app
from core.settings import Settings
from db import migrate
from db.embedded import EmbeddedPostgres
from tests.helpers import WORKER_ENV, Receiver, running_receiver

TEMPLATE = "eventgate_template"
_copies = itertools.count()


def database_url_for(server_url: str, database: str) -> str:
    """The same server, another database."""
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """EVENTGATE_TEST_DATABASE_URL, or an embedded server started once for the session."""
    given = os.environ.get("EVENTGATE_TEST_DATABASE_URL")
    if given:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="eventgate-test-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pg", delete_on_stop=True)
        url = server.start()
        with psycopg.connect(url, autocommit=True) as conn:
            # Durability is not under test; speed is welcome.
            conn.execute("ALTER SYSTEM SET fsync = off")
            conn.execute("ALTER SYSTEM SET synchronous_commit = off")
            conn.execute("ALTER SYSTEM SET full_page_writes = off")
            conn.execute("SELECT pg_reload_conf()")
        try:
            yield url
        finally:
            server.stop()


@pytest.fixture(scope="session")
def template_url(server_url: str) -> str:
    """A database migrated once with the real migrations, copied for each test."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEMPLATE))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
    url = database_url_for(server_url, TEMPLATE)
    migrate.apply(url)
    return url


@pytest.fixture
def database_url(server_url: str, template_url: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own."""
    name = f"eventgate_test_{os.getpid()}_{next(_copies)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(TEMPLATE)
            )
        )
    try:
        yield database_url_for(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings pointing at this test's database, with small pools."""
    return Settings(
        database_url=database_url,
        pool_min_size=1,
        pool_max_size=10,
        last_used_flush_seconds=0.2,
        auth_failure_delay_seconds=0.0,  # tests send many refused keys on purpose
        # Tests deliver to a receiver on loopback.
        allow_private_destinations=True,
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient]:
    """The real application, lifespan and all, over in-process HTTP."""
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def worker_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The environment a worker of this test reads (small timings); returns the database URL."""
    monkeypatch.setenv("EVENTGATE_DATABASE_URL", database_url)
    for name, value in WORKER_ENV.items():
        monkeypatch.setenv(name, value)
    return database_url


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver on a free loopback port."""
    async with running_receiver() as running:
        yield running
