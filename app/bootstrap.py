"""First start: a default tenant, an admin key for it, and its first console admin."""

from __future__ import annotations

import psycopg

from app.console import people
from app.keys import services as keys
from app.scopes import ALL_SCOPES
from db import console_users, tenants

DEFAULT_TENANT = "default"
FIRST_ADMIN = "admin@localhost"


async def ensure_default_tenant(database_url: str) -> str | None:
    """Create the default tenant if missing; return its new admin key (None if it existed)."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        async with conn.transaction():
            tenant, created = await tenants.create_or_get(conn, DEFAULT_TENANT)
            if not created:
                return None
            # The operator's own first key: no rate limit (keys it creates get the tiers).
            key = await keys.issue(
                conn,
                tenant_id=tenant.id,
                name="admin",
                scopes=list(ALL_SCOPES),
                rate_limit_tier="unlimited",
            )
    return key.key


async def ensure_first_admin(database_url: str) -> tuple[str, str] | None:
    """Give the default tenant a console admin if it has no user; its email and password
    (None when it had users)."""
    password = people.new_password()
    password_hash = await people.hash_password(password)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        async with conn.transaction():
            tenant, _ = await tenants.create_or_get(conn, DEFAULT_TENANT)
            if await console_users.any_user(conn, tenant.id):
                return None
            await people.create_user(conn, tenant.id, FIRST_ADMIN, password_hash, "admin")
    return FIRST_ADMIN, password
