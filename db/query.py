"""The one way db/ modules run a statement and turn its rows into Structs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, LiteralString, TypeVar

import msgspec
from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import RowMaker, class_row
from psycopg.types.json import Jsonb

Row = TypeVar("Row", bound=msgspec.Struct)
Params = Mapping[str, Any] | Sequence[Any] | None


async def fetch_one(
    conn: AsyncConnection, query: LiteralString, params: Params, row: type[Row]
) -> Row | None:
    """The first row as a `row` Struct, or None."""
    async with conn.cursor(row_factory=class_row(row)) as cur:
        await cur.execute(query, params)
        return await cur.fetchone()


async def fetch_all(
    conn: AsyncConnection,
    query: LiteralString,
    params: Params,
    row: type[Row],
) -> list[Row]:
    """Every row as a `row` Struct."""
    async with conn.cursor(row_factory=class_row(row)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def fetch_flagged(
    conn: AsyncConnection, query: LiteralString, params: Params, row: type[Row]
) -> tuple[list[Row], int]:
    """The rows whose first column is true as `row` Structs (of the other columns), and how
    many rows came back with it false."""
    async with conn.cursor(row_factory=_flagged_row(row)) as cur:
        await cur.execute(query, params)
        found = await cur.fetchall()
    kept = [r for r in found if r is not None]
    return kept, len(found) - len(kept)


def _flagged_row(row: type[Row]) -> Any:
    def factory(cursor: AsyncCursor[Any]) -> RowMaker[Row | None]:
        names = [column.name for column in cursor.description or []][1:]

        def make(values: Sequence[Any]) -> Row | None:
            return row(**dict(zip(names, values[1:], strict=True))) if values[0] else None

        return make

    return factory


async def fetch_value(conn: AsyncConnection, query: LiteralString, params: Params = None) -> Any:
    """The first column of the first row, or None when there is no row."""
    cur = await conn.execute(query, params)
    found = await cur.fetchone()
    return None if found is None else found[0]


async def fetch_tuples(
    conn: AsyncConnection, query: LiteralString, params: Params = None
) -> list[tuple[Any, ...]]:
    """Every row as a plain tuple (for small two-column answers)."""
    cur = await conn.execute(query, params)
    return await cur.fetchall()


def jsonb_rows(rows: Sequence[msgspec.Struct]) -> Jsonb:
    """Rows as one msgspec-encoded jsonb document, for jsonb_to_recordset: far cheaper than
    many Python-dumped arrays."""
    return Jsonb(list(rows), dumps=msgspec.json.encode)


def as_jsonb(params: dict[str, Any], *names: str) -> dict[str, Any]:
    """The params with the named values (those not None) bound as jsonb."""
    return {
        name: Jsonb(value) if name in names and value is not None else value
        for name, value in params.items()
    }
