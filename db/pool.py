"""The one place that opens connection pools to Eventgate's database."""

from __future__ import annotations

from typing import Any

import msgspec
from psycopg import AsyncConnection
from psycopg.conninfo import make_conninfo
from psycopg.types.json import set_json_dumps, set_json_loads
from psycopg_pool import AsyncConnectionPool


def with_keepalives(database_url: str) -> str:
    """Add TCP keepalives so a lost network is noticed instead of hanging forever."""
    return make_conninfo(
        database_url,
        keepalives=1,
        keepalives_idle=10,
        keepalives_interval=5,
        keepalives_count=3,
        tcp_user_timeout=30_000,
        connect_timeout=5,
    )


async def use_msgspec_json(conn: AsyncConnection) -> None:
    """Pool configure hook: (de)serialise json/jsonb with msgspec, several times faster."""
    set_json_dumps(msgspec.json.encode, conn)
    set_json_loads(msgspec.json.decode, conn)


def connection_kwargs(prepared: bool) -> dict[str, Any]:
    """psycopg's connection arguments: no prepared statements when `prepared` is off."""
    return {} if prepared else {"prepare_threshold": None}


async def open_pool(
    database_url: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    name: str = "eventgate",
    prepared: bool = True,
) -> AsyncConnectionPool:
    """Open an autocommit pool; callers open explicit transactions with conn.transaction().
    Without `prepared` (behind a transaction-mode pooler) no statement is prepared: the next
    transaction may run on another server connection."""
    pool = AsyncConnectionPool(
        with_keepalives(database_url),
        min_size=min_size,
        max_size=max_size,
        name=name,
        open=False,
        kwargs={"autocommit": True, **connection_kwargs(prepared)},
        configure=use_msgspec_json,
        timeout=10,
        reconnect_timeout=0,  # keep trying for ever: the database may come back
    )
    await pool.open(wait=False)
    return pool
