"""Request and response bodies of the /v1/keys routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from app.pagination import Pagination

ScopeName = Literal[
    "events:write",
    "events:read",
    "endpoints:manage",
    "keys:manage",
    "sources:manage",
    "audit:read",
    "schedules:manage",
    "admin",
]


TierName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9_-]+$")]


class CreateKeyRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A new API key: its name, scopes and optional expiry."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    scopes: Annotated[list[ScopeName], msgspec.Meta(min_length=1)]
    expires_at: datetime | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    rate_limit_tier: TierName | None = None


class KeyPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Changes to a key: its name, or a tier no more generous than its current one."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    rate_limit_tier: TierName | msgspec.UnsetType = msgspec.UNSET


class RotateKeyRequest(msgspec.Struct, forbid_unknown_fields=True):
    """How long the old key keeps working after a rotation (0: it stops now)."""

    grace_period_seconds: Annotated[int, msgspec.Meta(ge=0, le=30 * 86400)] = 0


class KeyView(msgspec.Struct, kw_only=True):
    """An API key as shown after creation: never its secret."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    rate_limit_tier: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime
    created_by: uuid.UUID | None
    metadata: dict[str, Any]


class CreatedKey(KeyView, kw_only=True):
    """A key just created or rotated: the only response that carries the full key."""

    key: str


class KeyList(msgspec.Struct):
    """One page of keys."""

    keys: list[KeyView]
    pagination: Pagination
