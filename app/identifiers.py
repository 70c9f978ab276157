"""Parsing ids from paths: a malformed id is the client's mistake (400), not a missing row."""

from __future__ import annotations

import uuid

from app.errors import BadRequest


def parse_id(value: str, field: str) -> uuid.UUID:
    """The UUID in a path segment, or BadRequest naming the parameter."""
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise BadRequest(f"`{field}` is not a valid id", {"field": field}) from exc


def parse_optional_id(value: str | None, field: str) -> uuid.UUID | None:
    """The UUID in an optional query parameter (None when absent)."""
    return parse_id(value, field) if value else None
