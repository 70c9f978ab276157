"""Dependency providers shared by every controller; the lifespan puts their sources in state.

Providers are async on purpose: Litestar runs a sync provider in a worker thread per request.
They read the app's state through the request: a `state` parameter is a new State per call.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from litestar import Request
from litestar.di import NamedDependency, Provide
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from app.events.services import Ingest
from app.events.stream_hub import StreamHub
from app.idempotency import SHARED_TRANSACTION
from app.keys.verifier import KeyVerifier, Principal
from app.sources.triggers import Triggers
from core.sandbox import Sandbox
from core.settings import Settings


async def provide_pool(request: Request) -> AsyncConnectionPool:
    """The process's connection pool."""
    return request.app.state.pool


async def provide_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    return request.app.state.settings


async def provide_ingest(request: Request) -> Ingest:
    """The process's event ingest service."""
    return request.app.state.ingest


async def provide_streams(request: Request) -> StreamHub:
    """The process's open event streams."""
    return request.app.state.streams


async def provide_triggers(request: Request) -> Triggers:
    """The process's trigger request handling (sources' webhooks)."""
    return request.app.state.triggers


async def provide_sandbox(request: Request) -> Sandbox:
    """The API process's sandbox for transformations."""
    return request.app.state.sandbox


async def provide_key_verifier(request: Request) -> KeyVerifier:
    """The process's API key verifier (and its cache)."""
    return request.app.state.key_verifier


async def provide_transaction(
    pool: NamedDependency[AsyncConnectionPool], request: Request
) -> AsyncGenerator[AsyncConnection, None]:
    """One transaction per request: committed before the response is sent, rolled back on
    error. A request with an Idempotency-Key already runs in one that will also store its
    answer: the handler joins it."""
    shared = request.scope.get(SHARED_TRANSACTION)
    if shared is not None:
        yield shared
        return
    async with pool.connection() as conn, conn.transaction():
        yield conn


async def provide_reader(request: Request) -> AsyncGenerator[AsyncConnection, None]:
    """A connection for a heavy read that may be a little stale: the read replica's while it
    is fresh enough (app/replica.py), else the primary's; in a read-only transaction."""
    pool = await request.app.state.replica.pool()
    async with pool.connection() as conn, conn.transaction():
        yield conn


async def provide_caller(request: Request) -> Principal:
    """The principal the authentication middleware verified."""
    return request.user


DEPENDENCIES = {
    "pool": Provide(provide_pool),
    "settings": Provide(provide_settings),
    "key_verifier": Provide(provide_key_verifier),
    "ingest": Provide(provide_ingest),
    "triggers": Provide(provide_triggers),
    "streams": Provide(provide_streams),
    "sandbox": Provide(provide_sandbox),
    "conn": Provide(provide_transaction),
    "reader": Provide(provide_reader),
    "caller": Provide(provide_caller),
}

# Handler parameter types, injected by name.
Transaction = NamedDependency[AsyncConnection]
Reader = NamedDependency[AsyncConnection]  # a heavy read, possibly from the replica
Caller = NamedDependency[Principal]
Pool = NamedDependency[AsyncConnectionPool]
AppSettings = NamedDependency[Settings]
Verifier = NamedDependency[KeyVerifier]
Ingestor = NamedDependency[Ingest]
TriggerService = NamedDependency[Triggers]
Streams = NamedDependency[StreamHub]
Sandboxes = NamedDependency[Sandbox]
