"""SQL of transformations: the current code on its endpoint or source row, every version in
transformation_versions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import LiteralString

import msgspec
from psycopg import AsyncConnection

from core.transformations import OwnerKind
from db.ids import new_id
from db.query import fetch_all, fetch_one


class Current(msgspec.Struct):
    """An owner's transformation now (code None: none) and its version number."""

    code: str | None
    version: int


class Version(msgspec.Struct):
    """One kept version of an owner's transformation."""

    version: int
    code: str | None
    created_at: datetime


# The current code of a live endpoint of the tenant (endpoints_pkey).
ENDPOINT_CURRENT = """
SELECT transformation AS code, transformation_version AS version FROM endpoints
WHERE tenant_id = %(tenant_id)s AND id = %(owner_id)s AND deleted_at IS NULL
"""

# The current code of a source of the tenant (sources_pkey).
SOURCE_CURRENT = """
SELECT transformation AS code, transformation_version AS version FROM sources
WHERE tenant_id = %(tenant_id)s AND id = %(owner_id)s
"""

# Replace a live endpoint's code and keep it as its next version (endpoints_pkey); the row lock
# orders concurrent changes, so version numbers never collide.
SET_ENDPOINT = """
WITH changed AS (
    UPDATE endpoints SET transformation = %(code)s,
        transformation_version = transformation_version + 1, updated_at = now()
    WHERE tenant_id = %(tenant_id)s AND id = %(owner_id)s AND deleted_at IS NULL
    RETURNING tenant_id, id, transformation_version
)
INSERT INTO transformation_versions (tenant_id, id, owner_kind, owner_id, version, code)
SELECT tenant_id, %(version_id)s, 'endpoint', id, transformation_version, %(code)s FROM changed
RETURNING code, version
"""

# Replace a source's code and keep it as its next version (sources_pkey).
SET_SOURCE = """
WITH changed AS (
    UPDATE sources SET transformation = %(code)s,
        transformation_version = transformation_version + 1, updated_at = now()
    WHERE tenant_id = %(tenant_id)s AND id = %(owner_id)s
    RETURNING tenant_id, id, transformation_version
)
INSERT INTO transformation_versions (tenant_id, id, owner_kind, owner_id, version, code)
SELECT tenant_id, %(version_id)s, 'source', id, transformation_version, %(code)s FROM changed
RETURNING code, version
"""

# A page of an owner's versions, newest first, before a version number
# (transformation_versions_tenant_id_owner_kind_owner_id_version_key).
VERSIONS = """
SELECT version, code, created_at FROM transformation_versions
WHERE tenant_id = %(tenant_id)s AND owner_kind = %(owner_kind)s AND owner_id = %(owner_id)s
  AND version < %(before)s
ORDER BY version DESC
LIMIT %(limit)s
"""

CURRENT: dict[OwnerKind, LiteralString] = {"endpoint": ENDPOINT_CURRENT, "source": SOURCE_CURRENT}
SET: dict[OwnerKind, LiteralString] = {"endpoint": SET_ENDPOINT, "source": SET_SOURCE}


async def current(
    conn: AsyncConnection, tenant_id: uuid.UUID, kind: OwnerKind, owner_id: uuid.UUID
) -> Current | None:
    """The owner's transformation now, or None when the tenant has no such owner."""
    params = {"tenant_id": tenant_id, "owner_id": owner_id}
    return await fetch_one(conn, CURRENT[kind], params, Current)


async def set_code(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    kind: OwnerKind,
    owner_id: uuid.UUID,
    code: str | None,
) -> Current | None:
    """Make `code` (None: none) the owner's transformation, as a new version."""
    params = {"tenant_id": tenant_id, "owner_id": owner_id, "code": code, "version_id": new_id()}
    return await fetch_one(conn, SET[kind], params, Current)


async def versions(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    kind: OwnerKind,
    owner_id: uuid.UUID,
    before: int,
    limit: int,
) -> list[Version]:
    """Up to `limit` versions older than `before`, newest first."""
    params = {
        "tenant_id": tenant_id,
        "owner_kind": kind,
        "owner_id": owner_id,
        "before": before,
        "limit": limit,
    }
    return await fetch_all(conn, VERSIONS, params, Version)
