"""SQL for the tenants table."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from psycopg import AsyncConnection

from db.ids import new_id
from db.query import fetch_all, fetch_one


class Tenant(msgspec.Struct):
    """One tenants row."""

    id: uuid.UUID
    name: str
    created_at: datetime


# Insert a tenant, or return the existing one of that name (tenants_name_key).
CREATE_OR_GET = """
WITH inserted AS (
    INSERT INTO tenants (id, name) VALUES (%(id)s, %(name)s)
    ON CONFLICT (name) DO NOTHING
    RETURNING id, name, created_at
)
SELECT id, name, created_at FROM inserted
UNION ALL
SELECT id, name, created_at FROM tenants WHERE name = %(name)s
LIMIT 1
"""

# Find a tenant by name (tenants_name_key).
GET_BY_NAME = "SELECT id, name, created_at FROM tenants WHERE name = %(name)s"

# Every tenant, by name, for the operator's CLI (tenants_name_key).
LIST_ALL = "SELECT id, name, created_at FROM tenants ORDER BY name"


async def create_or_get(conn: AsyncConnection, name: str) -> tuple[Tenant, bool]:
    """The tenant called `name`, created when missing; the flag tells whether it is new."""
    tenant_id = new_id()
    tenant = await fetch_one(conn, CREATE_OR_GET, {"id": tenant_id, "name": name}, Tenant)
    assert tenant is not None
    return tenant, tenant.id == tenant_id


async def get_by_name(conn: AsyncConnection, name: str) -> Tenant | None:
    """The tenant called `name`, if any."""
    return await fetch_one(conn, GET_BY_NAME, {"name": name}, Tenant)


async def list_all(conn: AsyncConnection) -> list[Tenant]:
    """Every tenant, by name."""
    return await fetch_all(conn, LIST_ALL, None, Tenant)
