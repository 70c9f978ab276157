"""SQL for the event_types catalog."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from db.query import fetch_all, fetch_one, fetch_value


class EventType(msgspec.Struct):
    """One event_types row."""

    name: str
    description: str
    schema: dict[str, Any] | None
    archived: bool
    version: int
    created_at: datetime
    updated_at: datetime


COLUMNS = "name, description, schema, archived, version, created_at, updated_at"

# Add a type; nothing when the name is taken (event_types_pkey).
INSERT = f"""
INSERT INTO event_types (tenant_id, name, description, schema)
VALUES (%(tenant_id)s, %(name)s, %(description)s, %(schema)s)
ON CONFLICT (tenant_id, name) DO NOTHING
RETURNING {COLUMNS}
"""

# One type of a tenant (event_types_pkey).
GET = f"SELECT {COLUMNS} FROM event_types WHERE tenant_id = %(tenant_id)s AND name = %(name)s"

# Names sort the catalog; the cursor is the last name of the previous page (event_types_pkey).
LIST_PAGE = f"""
SELECT {COLUMNS} FROM event_types
WHERE tenant_id = %(tenant_id)s AND (%(after)s::text IS NULL OR name > %(after)s)
  AND (%(include_archived)s OR NOT archived)
ORDER BY name
LIMIT %(limit)s
"""

# Change a type; every change bumps version so cached compiled schemas are recompiled
# (event_types_pkey).
UPDATE = f"""
UPDATE event_types SET
    description = COALESCE(%(description)s, description),
    schema = CASE WHEN %(set_schema)s THEN %(schema)s ELSE schema END,
    archived = COALESCE(%(archived)s, archived),
    version = version + 1, updated_at = now()
WHERE tenant_id = %(tenant_id)s AND name = %(name)s
RETURNING {COLUMNS}
"""

# The schema of a type at one version: none when it changed meanwhile (event_types_pkey).
GET_SCHEMA = """
SELECT schema FROM event_types
WHERE tenant_id = %(tenant_id)s AND name = %(name)s AND version = %(version)s
"""


async def insert(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    name: str,
    description: str,
    schema: dict[str, Any] | None,
) -> EventType | None:
    """Create a type; None when the name is taken."""
    params = {
        "tenant_id": tenant_id,
        "name": name,
        "description": description,
        "schema": None if schema is None else Jsonb(schema),
    }
    return await fetch_one(conn, INSERT, params, EventType)


async def get(conn: AsyncConnection, tenant_id: uuid.UUID, name: str) -> EventType | None:
    """One type of the tenant."""
    return await fetch_one(conn, GET, {"tenant_id": tenant_id, "name": name}, EventType)


async def list_page(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    after: str | None,
    limit: int,
    include_archived: bool,
) -> list[EventType]:
    """Up to `limit` types after the name `after`, by name."""
    params = {
        "tenant_id": tenant_id,
        "after": after,
        "limit": limit,
        "include_archived": include_archived,
    }
    return await fetch_all(conn, LIST_PAGE, params, EventType)


async def update(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    name: str,
    *,
    description: str | None = None,
    schema: dict[str, Any] | None = None,
    set_schema: bool = False,
    archived: bool | None = None,
) -> EventType | None:
    """Change a type; None when there is none by that name."""
    params = {
        "tenant_id": tenant_id,
        "name": name,
        "description": description,
        "schema": None if schema is None else Jsonb(schema),
        "set_schema": set_schema,
        "archived": archived,
    }
    return await fetch_one(conn, UPDATE, params, EventType)


async def get_schema(
    conn: AsyncConnection, tenant_id: uuid.UUID, name: str, version: int
) -> dict[str, Any] | None:
    """The schema of a type at one version (None if it changed meanwhile)."""
    params = {"tenant_id": tenant_id, "name": name, "version": version}
    schema: dict[str, Any] | None = await fetch_value(conn, GET_SCHEMA, params)
    return schema
