"""SQL for the tenants table."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import class_row

from db.ids import new_id


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


async def create_or_get(conn: AsyncConnection, name: str) -> tuple[Tenant, bool]:
    """The tenant called `name`, created when missing; the flag tells whether it is new."""
    tenant_id = new_id()
    async with conn.cursor(row_factory=class_row(Tenant)) as cur:
        await cur.execute(CREATE_OR_GET, {"id": tenant_id, "name": name})
        tenant = await cur.fetchone()
    assert tenant is not None
    return tenant, tenant.id == tenant_id


async def get_by_name(conn: AsyncConnection, name: str) -> Tenant | None:
    """The tenant called `name`, if any."""
    async with conn.cursor(row_factory=class_row(Tenant)) as cur:
        await cur.execute(GET_BY_NAME, {"name": name})
        return await cur.fetchone()
