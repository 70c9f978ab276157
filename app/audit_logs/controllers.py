"""GET /v1/audit-logs: the tenant's audit trail (scope audit:read)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from litestar import Controller, get
from litestar.params import QueryParameter

from app.audit_logs import services
from app.audit_logs.schemas import AuditLogPage
from app.auth import api_key_auth
from app.dependencies import Caller, Transaction
from app.openapi import SECURITY, error_responses
from app.pagination import Cursor, Limit
from app.rate_limits.middleware import api_rate_limit
from app.scopes import AUDIT_READ, require_scope

Word = Annotated[str | None, QueryParameter(min_length=1, max_length=100, pattern=r"^[a-z_.]+$")]
ResourceId = Annotated[
    str | None, QueryParameter(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")
]
KeyId = Annotated[uuid.UUID | None, QueryParameter(description="Only changes by this key")]
Time = Annotated[datetime | None, QueryParameter(description="ISO 8601 time")]


class AuditLogController(Controller):
    """Who changed what: keys, endpoints, event types, sources, rate limits, secrets."""

    path = "/v1/audit-logs"
    tags = ["audit"]  # noqa: RUF012 - Litestar reads class attributes
    guards = [require_scope]  # noqa: RUF012
    middleware = [api_key_auth, api_rate_limit]  # noqa: RUF012
    opt = {"scope": AUDIT_READ}  # noqa: RUF012
    security = SECURITY

    @get("/", summary="List audit entries, newest first", responses=error_responses(400, 401, 403))
    async def list_audit_logs(
        self,
        conn: Transaction,
        caller: Caller,
        action: Word = None,
        resource_type: Word = None,
        resource_id: ResourceId = None,
        actor_key_id: KeyId = None,
        since: Time = None,
        until: Time = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> AuditLogPage:
        filters = {"action": action, "resource_type": resource_type, "resource_id": resource_id}
        filters.update(actor_key_id=actor_key_id, since=since, until=until)
        return await services.page(conn, caller.tenant_id, filters, cursor, limit)
