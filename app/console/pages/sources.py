"""Pages under /console/sources: inbound sources, and each one's refused requests."""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Template

from app.console.base import Session
from app.console.rendering import render
from app.dependencies import Transaction
from app.identifiers import IdPath, parse_id
from app.pagination import Cursor
from app.scopes import SOURCES_MANAGE
from app.sources import services

PAGE_SIZE = 100


class SourcePages(Controller):
    """The tenant's sources (created and changed through the API)."""

    path = "/sources"
    opt = {"scope": SOURCES_MANAGE}  # noqa: RUF012

    @get("/", name="sources")
    async def list_sources(
        self, session: Session, conn: Transaction, cursor: Cursor = None
    ) -> Template:
        page = await services.list_page(conn, session.principal.tenant_id, cursor, PAGE_SIZE)
        return render(session, "sources.html", active="/sources", page=page)

    @get("/{source_id:str}", name="source")
    async def show_source(self, session: Session, conn: Transaction, source_id: IdPath) -> Template:
        tenant_id, source_uuid = session.principal.tenant_id, parse_id(source_id, "source_id")
        source = await services.get(conn, tenant_id, source_uuid)
        rejections = await services.rejections(conn, tenant_id, source_uuid)
        return render(
            session, "source.html", active="/sources", source=source, rejections=rejections
        )
