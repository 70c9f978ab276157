"""Event type rules: schemas are checked when stored and compiled once per version."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import jsonschema_rs
import msgspec
from psycopg import AsyncConnection

from app.audit import record
from app.errors import BadRequest, Conflict, NotFound
from app.event_types.schemas import EventTypeIn, EventTypeList, EventTypePatch, EventTypeView
from app.pagination import Pagination, decode_name_cursor, encode_name_cursor
from app.views import to_view, to_views
from core.json_schemas import compile_schema, json_path
from db import event_types

MAX_COMPILED = 10_000


def checked_schema(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """The schema if it is a valid, self-contained JSON Schema, else BadRequest naming the
    problem."""
    if schema is not None:
        try:
            compile_schema(schema)
        except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError) as exc:
            problem = str(exc).split("\n", 1)[0]
            path = json_path(getattr(exc, "instance_path", []))
            raise BadRequest(
                f"schema is not a valid, self-contained JSON Schema at `{path}`: {problem}",
                {"field": "schema", "path": path},
            ) from exc
        except ValueError as exc:  # the document nests deeper than the compiler allows
            raise BadRequest(f"schema is not usable: {exc}", {"field": "schema"}) from exc
    return schema


async def create(conn: AsyncConnection, tenant_id: uuid.UUID, data: EventTypeIn) -> EventTypeView:
    """Add a type to the catalog; Conflict when the name exists."""
    schema = checked_schema(data.schema)
    row = await event_types.insert(conn, tenant_id, data.name, data.description, schema)
    if row is None:
        raise Conflict(f"event type `{data.name}` already exists", {"field": "name"})
    view = to_view(row, EventTypeView)
    await record(conn, tenant_id, "event_type.create", "event_type", data.name, after=view)
    return view


async def list_page(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    cursor: str | None,
    limit: int,
    include_archived: bool,
) -> EventTypeList:
    """A page of the tenant's event types by name."""
    after = decode_name_cursor(cursor)
    rows = await event_types.list_page(conn, tenant_id, after, limit + 1, include_archived)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_name_cursor(rows[-1].name) if more else None
    return EventTypeList(to_views(rows, EventTypeView), Pagination(next_cursor, limit))


async def archive(conn: AsyncConnection, tenant_id: uuid.UUID, name: str) -> EventTypeView:
    """Archive a type (it stays listed with include_archived)."""
    return await update(conn, tenant_id, name, EventTypePatch(archived=True))


async def get(conn: AsyncConnection, tenant_id: uuid.UUID, name: str) -> EventTypeView:
    """One type, or NotFound."""
    row = await event_types.get(conn, tenant_id, name)
    if row is None:
        raise NotFound("no such event type")
    return to_view(row, EventTypeView)


async def update(
    conn: AsyncConnection, tenant_id: uuid.UUID, name: str, data: EventTypePatch
) -> EventTypeView:
    """Apply a PATCH; NotFound when there is no such type."""
    set_schema = data.schema is not msgspec.UNSET
    schema = checked_schema(data.schema) if set_schema and data.schema else None
    before = await get(conn, tenant_id, name)
    row = await event_types.update(
        conn,
        tenant_id,
        name,
        description=None if data.description is msgspec.UNSET else data.description,
        schema=schema,
        set_schema=set_schema,
        archived=None if data.archived is msgspec.UNSET else data.archived,
    )
    if row is None:
        raise NotFound("no such event type")
    after = to_view(row, EventTypeView)
    action = "event_type.archive" if data.archived is True else "event_type.update"
    await record(conn, tenant_id, action, "event_type", name, before=before, after=after)
    return after


class SchemaCache:
    """Compiled payload validators per (tenant, type, version): compiling is never repeated."""

    def __init__(self) -> None:
        self._compiled: dict[tuple[uuid.UUID, str, int], jsonschema_rs.Validator] = {}

    async def validate(
        self,
        conn: AsyncConnection,
        tenant_id: uuid.UUID,
        versions: dict[str, int],
        payloads: Sequence[tuple[str, str, dict[str, Any]]],
    ) -> None:
        """Check (where, event_type, payload) items against the types' schemas at `versions`;
        BadRequest names the first failing path."""
        if not versions:
            return
        validators = {
            name: await self._validator(conn, tenant_id, name, version)
            for name, version in versions.items()
        }
        for where, event_type, payload in payloads:
            validator = validators.get(event_type)
            if validator is None:
                continue
            error = next(iter(validator.iter_errors(payload)), None)
            if error is not None:
                path = json_path(error.instance_path)
                raise BadRequest(
                    f"{where}payload does not match the schema of `{event_type}` at `{path}`: "
                    f"{error.message}",
                    {"field": f"{where}payload{path[1:]}", "event_type": event_type},
                )

    async def _validator(
        self, conn: AsyncConnection, tenant_id: uuid.UUID, name: str, version: int
    ) -> jsonschema_rs.Validator | None:
        key = (tenant_id, name, version)
        validator = self._compiled.get(key)
        if validator is None:
            schema = await event_types.get_schema(conn, tenant_id, name, version)
            if schema is None:
                return None
            if len(self._compiled) >= MAX_COMPILED:
                self._compiled.clear()
            try:
                validator = self._compiled[key] = compile_schema(schema)
            except (ValueError, jsonschema_rs.ReferencingError) as exc:
                # Stored before schemas were checked this strictly.
                raise BadRequest(
                    f"the schema of `{name}` is not usable ({str(exc).splitlines()[0]}); "
                    f"replace it with PATCH /v1/event-types/{name}",
                    {"event_type": name},
                ) from exc
        return validator
