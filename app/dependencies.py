"""Dependency providers shared by every controller."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from psycopg import AsyncConnection

from app.keys.verifier import Principal


async def provide_transaction(state: State) -> AsyncGenerator[AsyncConnection, None]:
    """One transaction per request: committed before the response is sent, rolled back on error."""
    async with state.pool.connection() as conn, conn.transaction():
        yield conn


async def provide_caller(request: Request) -> Principal:
    """The principal the authentication middleware verified."""
    return request.user


# Handler parameter types: the per-request transaction and the verified caller.
Transaction = NamedDependency[AsyncConnection]
Caller = NamedDependency[Principal]
