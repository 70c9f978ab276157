"""Pages /portal/{token}/ (a portal opens on its endpoints) and /portal/{token}/event-types
(the catalogue of what a customer may subscribe to)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Redirect, Template

from app.console.base import Session
from app.console.rendering import go, render
from app.console.schema_examples import example_of
from app.dependencies import Transaction
from app.event_types import services as event_types


class PortalHome(Controller):
    """The portal's start."""

    path = "/"
    opt = {"scope": None}  # noqa: RUF012

    @get("/", name="portal_home")
    async def home(self, session: Session) -> Redirect:
        return go(f"{session.base}/endpoints")


class PortalEventTypes(Controller):
    """The event types a customer may subscribe to: each one's description, schema and an
    example payload drawn from the schema (never from anyone's events)."""

    path = "/event-types"
    opt = {"scope": None}  # noqa: RUF012 - every portal shows the catalogue

    @get("/", name="portal_event_types")
    async def catalogue(self, session: Session, conn: Transaction) -> Template:
        page = await event_types.list_page(conn, session.principal.tenant_id, None, 500, False)
        examples = {t.name: example_of(t.schema) for t in page.event_types if t.schema}
        return render(
            session, "catalogue.html", active="/event-types", page=page, examples=examples
        )
