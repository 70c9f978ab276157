"""Parsing ids from paths: a malformed id is the client's mistake (400), not a missing row."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar.params import Parameter

from app.errors import BadRequest

# A resource id in a path: a UUID as the API returned it (anything else is a 400).
IdPath = Annotated[
    str, Parameter(description="The id, as the API returned it", schema_extra={"format": "uuid"})
]


def parse_id(value: str, field: str) -> uuid.UUID:
    """The UUID in a path segment, or BadRequest naming the parameter."""
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise BadRequest(f"`{field}` is not a valid id", {"field": field}) from exc


def parse_optional_id(value: str | None, field: str) -> uuid.UUID | None:
    """The UUID in an optional query parameter (None when absent)."""
    return parse_id(value, field) if value else None
