"""GET /v1/request-logs: the tenant's answered requests, newest first (scope audit:read)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from litestar import get
from litestar.params import QueryParameter

from app.api import WITHOUT_IDEMPOTENCY, ApiController
from app.dependencies import Caller, Transaction
from app.openapi import error_responses
from app.pagination import Cursor, Limit
from app.request_logs import services
from app.request_logs.schemas import RequestLogPage
from app.scopes import AUDIT_READ

Status = Annotated[int | None, QueryParameter(ge=100, le=599, description="Only this status")]
Method = Annotated[str | None, QueryParameter(pattern=r"^[A-Z]{3,7}$", description="e.g. POST")]
Route = Annotated[
    str | None,
    QueryParameter(pattern=r"^/[A-Za-z0-9_/{}.:-]{0,200}$", description="A route template"),
]
KeyId = Annotated[uuid.UUID | None, QueryParameter(description="Only requests by this key")]
Time = Annotated[datetime | None, QueryParameter(description="ISO 8601 time")]


class RequestLogController(ApiController):
    """What the tenant's keys asked the API, and what it answered."""

    path = "/v1/request-logs"
    tags = ["audit"]  # noqa: RUF012 - Litestar reads class attributes
    middleware = WITHOUT_IDEMPOTENCY
    opt = {"scope": AUDIT_READ}  # noqa: RUF012

    @get(
        "/",
        summary="List answered requests, newest first",
        responses=error_responses(400, 401, 403),
    )
    async def list_request_logs(
        self,
        conn: Transaction,
        caller: Caller,
        status: Status = None,
        method: Method = None,
        path: Route = None,
        key_id: KeyId = None,
        since: Time = None,
        until: Time = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> RequestLogPage:
        filters = {"status": status, "method": method, "path": path, "key_id": key_id}
        filters.update(since=since, until=until)
        return await services.page(conn, caller.tenant_id, filters, cursor, limit)
