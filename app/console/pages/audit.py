"""Page /console/audit: the tenant's audit log, newest first, filtered by action or resource."""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Template

from app.audit_logs import services
from app.console.base import QueryText, Session
from app.console.forms import optional
from app.console.rendering import render
from app.dependencies import Transaction
from app.pagination import Cursor
from app.scopes import AUDIT_READ

PAGE_SIZE = 50
# Where an entry's resource is shown: its own page (the id appended), or its list.
RESOURCE_PAGES = {
    "endpoint": "/endpoints/",
    "source": "/sources/",
    "schedule": "/schedules/",
    "event_type": "/event-types/",
    "api_key": "/keys",
    "console_user": "/users",
    "console_invitation": "/users",
    "task": "/jobs",
}


class AuditPages(Controller):
    """Who changed what."""

    path = "/audit"
    opt = {"scope": AUDIT_READ}  # noqa: RUF012

    @get("/", name="audit")
    async def audit_log(
        self,
        session: Session,
        conn: Transaction,
        action: QueryText = "",
        resource_type: QueryText = "",
        cursor: Cursor = None,
    ) -> Template:
        filters = {"action": optional(action), "resource_type": optional(resource_type)}
        page = await services.page(conn, session.principal.tenant_id, filters, cursor, PAGE_SIZE)
        asked = {"action": action, "resource_type": resource_type}
        return render(
            session,
            "audit.html",
            active="/audit",
            page=page,
            asked=asked,
            resource_pages=RESOURCE_PAGES,
        )
