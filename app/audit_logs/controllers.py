"""GET /v1/audit-logs: the tenant's audit trail (scope audit:read)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from litestar import get
from litestar.params import QueryParameter

from app.api import WITHOUT_IDEMPOTENCY, ApiController
from app.audit_logs import services
from app.audit_logs.schemas import AuditLogPage
from app.dependencies import Caller, Transaction
from app.openapi import error_responses
from app.pagination import Cursor, Limit
from app.scopes import AUDIT_READ

Word = Annotated[str | None, QueryParameter(min_length=1, max_length=100, pattern=r"^[a-z_.]+$")]
ResourceId = Annotated[
    str | None, QueryParameter(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")
]
KeyId = Annotated[uuid.UUID | None, QueryParameter(description="Only changes by this key")]
Time = Annotated[datetime | None, QueryParameter(description="ISO 8601 time")]


class AuditLogController(ApiController):
    """Who changed what: keys, endpoints, event types, sources, rate limits, secrets."""

    path = "/v1/audit-logs"
    tags = ["audit"]  # noqa: RUF012 - Litestar reads class attributes
    middleware = WITHOUT_IDEMPOTENCY
    opt = {"scope": AUDIT_READ}  # noqa: RUF012

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
