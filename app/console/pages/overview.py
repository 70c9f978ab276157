"""Page /console/: the tenant's last hour, its delivery charts, backlog, dead letters and
endpoint states."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, get
from litestar.params import QueryParameter
from litestar.response import Template

from app.console.base import Session
from app.console.charts import delivery_chart
from app.console.figures import tenant_overview
from app.console.rendering import render
from app.dependencies import Transaction
from app.scopes import EVENTS_READ

REFRESH_SECONDS = 15
# Which chart view a page shows: bars per minute, hour or day.
ChartView = Annotated[Literal["minute", "hour", "day"], QueryParameter(description="chart bars")]


class OverviewPages(Controller):
    """The start page; it reloads itself every REFRESH_SECONDS."""

    path = "/"
    opt = {"scope": EVENTS_READ}  # noqa: RUF012

    @get("/", name="console_overview")
    async def overview(
        self, session: Session, conn: Transaction, view: ChartView = "minute"
    ) -> Template:
        figures = await tenant_overview(conn, session.principal.tenant_id)
        chart = await delivery_chart(conn, session.principal.tenant_id, view)
        return render(
            session,
            "overview.html",
            active="/",
            figures=figures,
            refresh=REFRESH_SECONDS,
            chart=chart,
        )
