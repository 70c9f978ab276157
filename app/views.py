"""The one way a stored row becomes a response body."""

from __future__ import annotations

from typing import TypeVar

import msgspec

View = TypeVar("View", bound=msgspec.Struct)


def to_view(row: object, view: type[View]) -> View:
    """The response Struct `view` filled from the row's same-named attributes (others are
    left out: a view never shows more than it declares)."""
    return msgspec.convert(row, view, from_attributes=True)


def to_views(rows: list[object] | list[msgspec.Struct], view: type[View]) -> list[View]:
    """Every row as `view`."""
    return [msgspec.convert(row, view, from_attributes=True) for row in rows]
