"""Opaque keyset cursors and the pagination block of list responses."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar

import msgspec
from litestar.params import QueryParameter

from app.errors import BadRequest
from db.ids import is_uuid7

MAX_LIMIT = 100
T = TypeVar("T")

Limit = Annotated[
    int, QueryParameter(ge=1, le=MAX_LIMIT, description=f"Page size, 1 to {MAX_LIMIT}")
]
Cursor = Annotated[
    str | None,
    QueryParameter(
        description="Opaque cursor from pagination.next_cursor",
        min_length=1,
        max_length=1000,
        pattern=r"^[A-Za-z0-9_-]+$",
    ),
]


class Pagination(msgspec.Struct):
    """Where the next page starts (null at the end) and the page size used."""

    next_cursor: str | None
    limit: int


def encode_cursor(last_id: uuid.UUID) -> str:
    """An opaque cursor pointing after `last_id`."""
    return base64.urlsafe_b64encode(last_id.bytes).rstrip(b"=").decode()


def decode_cursor(cursor: str | None) -> uuid.UUID | None:
    """The id a cursor points after; BadRequest for a cursor this API did not issue."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        # A stream's cursor carries the event's commit position after its id.
        after = uuid.UUID(bytes=raw[:16] if len(raw) == 24 else raw)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest("the cursor is not valid", {"field": "cursor"}) from exc
    if not is_uuid7(after):  # every id this API issues is a UUIDv7
        raise BadRequest("the cursor is not valid", {"field": "cursor"})
    return after


def page_of(
    rows: list[T], limit: int, id_of: Callable[[T], uuid.UUID]
) -> tuple[list[T], Pagination]:
    """Split a fetch of limit + 1 rows into the page and its pagination block."""
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, Pagination(encode_cursor(id_of(rows[-1])), limit)
    return rows, Pagination(None, limit)


def encode_name_cursor(last_name: str) -> str:
    """An opaque cursor pointing after the name `last_name`."""
    return base64.urlsafe_b64encode(last_name.encode()).rstrip(b"=").decode()


def decode_name_cursor(cursor: str | None) -> str | None:
    """The name a cursor points after; BadRequest for a cursor this API did not issue."""
    if cursor is None:
        return None
    try:
        name = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError) as exc:
        raise BadRequest("the cursor is not valid", {"field": "cursor"}) from exc
    if "\x00" in name:
        raise BadRequest("the cursor is not valid", {"field": "cursor"})
    return name


def check_window(since: datetime | None, until: datetime | None) -> None:
    """BadRequest for a listing's time window that ends before it starts."""
    if since is not None and until is not None and since >= until:
        raise BadRequest("since must be before until", {"field": "since"})
