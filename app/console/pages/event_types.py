"""Pages under /console/event-types: the catalog, and editing a type with its JSON Schema
(checked exactly as the API checks it)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.console.base import CheckedForm, Session
from app.console.forms import Form, json_object, refusal, to_struct
from app.console.rendering import go, render
from app.console.sessions import ConsoleSession
from app.dependencies import Transaction
from app.errors import BadRequest, Conflict
from app.event_types import services
from app.event_types.schemas import EventTypeIn, EventTypePatch, EventTypeView
from app.pagination import Cursor
from app.scopes import ENDPOINTS_MANAGE, EVENTS_READ

PAGE_SIZE = 100


def _fields(form: Form) -> dict[str, Any]:
    return {
        "description": form.get("description", "").strip(),
        "schema": json_object(form, "schema"),
    }


def _form_page(
    session: ConsoleSession,
    event_type: EventTypeView | None,
    form: Form | None = None,
    refused: BadRequest | Conflict | None = None,
) -> Template:
    """The editor; after a refusal, what was typed and the error at the field it names."""
    return render(
        session,
        "event_type.html",
        active="/event-types",
        event_type=event_type,
        typed={k: v for k, v in (form or {}).items() if k != "csrf_token"},
        **refusal(refused),
    )


class EventTypePages(Controller):
    """The tenant's event types; changing one needs the scope the API asks for it."""

    path = "/event-types"
    opt = {"scope": EVENTS_READ}  # noqa: RUF012

    @get("/", name="event_types")
    async def list_types(
        self, session: Session, conn: Transaction, cursor: Cursor = None
    ) -> Template:
        page = await services.list_page(conn, session.principal.tenant_id, cursor, PAGE_SIZE, True)
        return render(session, "event_types.html", active="/event-types", page=page)

    @get("/new", name="event_type_new", opt={"scope": ENDPOINTS_MANAGE})
    async def new_type(self, session: Session) -> Template:
        return _form_page(session, None)

    @post("/", name="event_type_create", opt={"scope": ENDPOINTS_MANAGE})
    async def create_type(
        self, session: Session, form: CheckedForm, conn: Transaction
    ) -> Redirect | Template:
        try:
            async with conn.transaction():  # a savepoint: a refused name leaves the rest usable
                data = to_struct(
                    {"name": form.get("name", "").strip(), **_fields(form)}, EventTypeIn
                )
                created = await services.create(conn, session.principal.tenant_id, data)
        except (BadRequest, Conflict) as refused:
            return _form_page(session, None, form, refused)
        return go(f"{session.base}/event-types/{created.name}?notice=created")

    @get("/{name:str}", name="event_type")
    async def show_type(self, session: Session, conn: Transaction, name: FromPath[str]) -> Template:
        return _form_page(session, await services.get(conn, session.principal.tenant_id, name))

    @post("/{name:str}", name="event_type_update", opt={"scope": ENDPOINTS_MANAGE})
    async def update_type(
        self, session: Session, form: CheckedForm, conn: Transaction, name: FromPath[str]
    ) -> Redirect | Template:
        tenant_id = session.principal.tenant_id
        try:
            async with conn.transaction():
                changes = to_struct(
                    {**_fields(form), "archived": form.get("archived") == "on"}, EventTypePatch
                )
                updated = await services.update(conn, tenant_id, name, changes)
        except (BadRequest, Conflict) as refused:
            return _form_page(session, await services.get(conn, tenant_id, name), form, refused)
        return go(f"{session.base}/event-types/{updated.name}?notice=saved")
