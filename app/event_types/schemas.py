"""Request and response bodies of the /v1/event-types routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from app.pagination import Pagination

TypeName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")
]


class EventTypeIn(msgspec.Struct, forbid_unknown_fields=True):
    """A new event type; schema, when given, is a JSON Schema every payload must match."""

    name: TypeName
    description: Annotated[str, msgspec.Meta(max_length=1000)] = ""
    schema: dict[str, Any] | None = None


class EventTypePatch(msgspec.Struct, forbid_unknown_fields=True):
    """Changes to an event type; absent fields stay, `schema: null` removes the schema."""

    description: Annotated[str, msgspec.Meta(max_length=1000)] | msgspec.UnsetType = msgspec.UNSET
    schema: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET
    archived: bool | msgspec.UnsetType = msgspec.UNSET


class EventTypeView(msgspec.Struct):
    """An event type of the catalog."""

    name: str
    description: str
    schema: dict[str, Any] | None
    archived: bool
    version: int
    created_at: datetime
    updated_at: datetime


class EventTypeList(msgspec.Struct):
    """A page of event types, by name."""

    event_types: list[EventTypeView]
    pagination: Pagination
