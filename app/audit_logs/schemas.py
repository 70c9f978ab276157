"""Response bodies of GET /v1/audit-logs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from app.pagination import Pagination


class AuditEntryView(msgspec.Struct):
    """One audit entry: who changed what, before and after (secrets are never kept)."""

    seq: int
    id: uuid.UUID
    created_at: datetime
    actor_key_id: uuid.UUID | None
    actor_key_prefix: str | None
    action: str
    resource_type: str
    resource_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    client_ip: str | None
    user_agent: str | None
    request_id: str | None
    hash: str
    actor_user_id: uuid.UUID | None = None  # a console user's changes name the person
    actor_email: str | None = None


class AuditLogPage(msgspec.Struct):
    """Audit entries, newest first."""

    entries: list[AuditEntryView]
    pagination: Pagination
