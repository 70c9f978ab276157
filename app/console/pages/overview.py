"""Page /console/: the tenant's last hour, backlog, dead letters and endpoint states."""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Template

from app.console.base import Session
from app.console.figures import tenant_overview
from app.console.rendering import render
from app.dependencies import Transaction
from app.scopes import EVENTS_READ

REFRESH_SECONDS = 15


class OverviewPages(Controller):
    """The start page; it reloads itself every REFRESH_SECONDS."""

    path = "/"
    opt = {"scope": EVENTS_READ}  # noqa: RUF012

    @get("/", name="console_overview")
    async def overview(self, session: Session, conn: Transaction) -> Template:
        figures = await tenant_overview(conn, session.principal.tenant_id)
        return render(
            session, "overview.html", active="/", figures=figures, refresh=REFRESH_SECONDS
        )
