"""First start: a default tenant and an admin key for it."""

from __future__ import annotations

import psycopg

from app.keys import services as keys
from app.scopes import ALL_SCOPES
from db import tenants

DEFAULT_TENANT = "default"


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
