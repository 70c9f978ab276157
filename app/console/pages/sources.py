"""Pages under /console/sources: inbound sources (created and edited here, their secret
write-only), and each one's refused requests."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.response import Redirect, Template

from app.console.base import CheckedForm, Session
from app.console.forms import refusal
from app.console.rendering import go, render
from app.console.sessions import ConsoleSession
from app.console.source_forms import SCHEMES, new_source, source_changes, typed_again
from app.dependencies import Transaction
from app.errors import BadRequest, Conflict
from app.identifiers import IdPath, parse_id
from app.pagination import Cursor
from app.scopes import SOURCES_MANAGE
from app.sources import services
from app.sources.schemas import SourceView

PAGE_SIZE = 100


def form_page(
    session: ConsoleSession,
    source: SourceView | None = None,
    typed: dict[str, str] | None = None,
    refused: BadRequest | Conflict | None = None,
) -> Template:
    """The create or edit form; after a refusal, what was typed and the error at its field."""
    return render(
        session,
        "source_form.html",
        active="/sources",
        source=source,
        schemes=SCHEMES,
        typed=typed or {},
        **refusal(refused),
    )


class SourcePages(Controller):
    """The tenant's sources."""

    path = "/sources"
    opt = {"scope": SOURCES_MANAGE}  # noqa: RUF012

    @get("/", name="sources")
    async def list_sources(
        self, session: Session, conn: Transaction, cursor: Cursor = None
    ) -> Template:
        page = await services.list_page(conn, session.principal.tenant_id, cursor, PAGE_SIZE)
        return render(session, "sources.html", active="/sources", page=page)

    @get("/new", name="source_new")
    async def new_form(self, session: Session) -> Template:
        return form_page(session)

    @post("/", name="source_create")
    async def create(
        self, session: Session, form: CheckedForm, conn: Transaction
    ) -> Template | Redirect:
        try:
            async with conn.transaction():  # a savepoint: a refused name leaves the rest usable
                created = await services.create(conn, session.principal.tenant_id, new_source(form))
        except (BadRequest, Conflict) as refused:
            return form_page(session, typed=typed_again(form), refused=refused)
        return go(f"{session.base}/sources/{created.source.id}?notice=source_created")

    @get("/{source_id:str}/edit", name="source_edit")
    async def edit_form(self, session: Session, conn: Transaction, source_id: IdPath) -> Template:
        tenant_id, source_uuid = session.principal.tenant_id, parse_id(source_id, "source_id")
        return form_page(session, await services.get(conn, tenant_id, source_uuid))

    @post("/{source_id:str}", name="source_update")
    async def update(
        self, session: Session, form: CheckedForm, conn: Transaction, source_id: IdPath
    ) -> Template | Redirect:
        tenant_id, source_uuid = session.principal.tenant_id, parse_id(source_id, "source_id")
        try:
            async with conn.transaction():
                await services.update(conn, tenant_id, source_uuid, source_changes(form))
        except (BadRequest, Conflict) as refused:
            current = await services.get(conn, tenant_id, source_uuid)
            return form_page(session, current, typed_again(form), refused)
        return go(f"{session.base}/sources/{source_uuid}?notice=saved")

    @get("/{source_id:str}/secret", name="source_secret", opt={"reveals_secret": True})
    async def reveal_secret(
        self, session: Session, conn: Transaction, source_id: IdPath
    ) -> Template:
        tenant_id, source_uuid = session.principal.tenant_id, parse_id(source_id, "source_id")
        source = await services.get(conn, tenant_id, source_uuid)
        secret = await services.secret(conn, tenant_id, source_uuid)
        return render(
            session, "source_secret.html", active="/sources", source=source, secret=secret
        )

    @get("/{source_id:str}", name="source")
    async def show_source(self, session: Session, conn: Transaction, source_id: IdPath) -> Template:
        tenant_id, source_uuid = session.principal.tenant_id, parse_id(source_id, "source_id")
        source = await services.get(conn, tenant_id, source_uuid)
        rejections = await services.rejections(conn, tenant_id, source_uuid)
        return render(
            session, "source.html", active="/sources", source=source, rejections=rejections
        )
