"""A real PostgreSQL for the whole session, a migrated template, and a fresh copy per test."""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import msgspec
import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from psycopg import sql

from app.main import create_app
from core.settings import Settings
from db import migrate
from db.embedded import EmbeddedPostgres
from tests.brokers import Broker, running_nats, running_rabbitmq, running_redis
from tests.helpers import TEST_ENCRYPTION_KEY, WORKER_ENV, Receiver, running_receiver

# One template per test process: two processes may share EVENTGATE_TEST_DATABASE_URL's server.
TEMPLATE = f"eventgate_template_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
_copies = itertools.count()
os.environ.setdefault("EVENTGATE_ENCRYPTION_KEYS", TEST_ENCRYPTION_KEY)


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


class FreshDatabases:
    """Copies of the migrated template, each made while the test before it runs: a copy
    takes about half a second (CREATE DATABASE waits for the server to write out what the
    last test dirtied), which then overlaps a test instead of adding to it."""

    def __init__(self, server_url: str) -> None:
        self._server_url = server_url
        self._maker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fresh-database")
        self._next: Future[str] | None = None

    def _create(self) -> str:
        name = f"eventgate_test_{os.getpid()}_{next(_copies)}"
        with psycopg.connect(self._server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(TEMPLATE)
                )
            )
        return name

    def take(self) -> str:
        """A new database nobody has touched; the next one starts being made."""
        ready = self._next or self._maker.submit(self._create)
        self._next = self._maker.submit(self._create)
        return ready.result()

    def drop(self, name: str) -> None:
        """Drop a database (and whoever is still connected to it)."""
        with psycopg.connect(self._server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))

    def close(self) -> None:
        """Drop the copy made ahead, if any."""
        if self._next is not None:
            self.drop(self._next.result())
        self._maker.shutdown()


@pytest.fixture(scope="session")
def fresh_databases(server_url: str, template_url: str) -> Iterator[FreshDatabases]:
    """The session's maker of fresh databases."""
    databases = FreshDatabases(server_url)
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture
def database_url(server_url: str, fresh_databases: FreshDatabases) -> Iterator[str]:
    """A fresh, migrated database of this test's own."""
    name = fresh_databases.take()
    try:
        yield database_url_for(server_url, name)
    finally:
        fresh_databases.drop(name)


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
        encryption_keys=(TEST_ENCRYPTION_KEY,),
    )


class BuiltApps:
    """Applications built once and started again by later tests. Building one (Litestar
    registering every route) costs about 0.4 s of CPU, more than most tests spend; each test
    still starts its own lifespan (pool, listener, caches) on its own settings and database.
    An app serves one test at a time, and only settings of the same shape (every field but
    the database addresses, and the tracing environment read while building) share one."""

    def __init__(self) -> None:
        self._idle: dict[bytes, list[Litestar]] = defaultdict(list)

    @staticmethod
    def _shape(settings: Settings) -> bytes:
        addresses = dict.fromkeys(("database_url", "direct_database_url", "read_database_url"))
        tracing = sorted((k, v) for k, v in os.environ.items() if k.startswith("OTEL_"))
        shape = msgspec.structs.replace(settings, **addresses)
        return msgspec.json.encode([shape, tracing])

    @contextlib.contextmanager
    def app_for(self, settings: Settings) -> Iterator[Litestar]:
        """A built app (or a new one) that starts with `settings`, kept for later tests."""
        idle = self._idle[self._shape(settings)]
        app = idle.pop() if idle else create_app(settings)
        app.state.settings = settings
        try:
            yield app
        finally:
            idle.append(app)


_built_apps = BuiltApps()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient]:
    """The real application, lifespan and all, over in-process HTTP."""
    with _built_apps.app_for(settings) as app:
        async with AsyncTestClient(app=app) as test_client:
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


@pytest.fixture(scope="session")
def redis_broker() -> Iterator[Broker]:
    """A redis-server for this test session."""
    with running_redis() as broker:
        yield broker


@pytest.fixture(scope="session")
def nats_broker() -> Iterator[Broker]:
    """A nats-server with JetStream for this test session."""
    with running_nats() as broker:
        yield broker


@pytest.fixture(scope="session")
def rabbitmq_broker() -> Iterator[Broker]:
    """A rabbitmq-server for this test session."""
    with running_rabbitmq() as broker:
        yield broker
