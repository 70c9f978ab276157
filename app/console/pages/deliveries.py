"""Pages under /console/deliveries (and a portal's): filtered lists, a delivery with every
attempt and its response excerpt, and retrying one."""

from __future__ import annotations

from urllib.parse import urlencode

from litestar import Controller, get, post
from litestar.response import Redirect, Template
from psycopg import AsyncConnection

from app.console import access
from app.console.base import CheckedForm, QueryText, Session
from app.console.forms import optional
from app.console.rendering import go, render
from app.console.sessions import ConsoleSession
from app.deliveries import services
from app.deliveries.schemas import DeliveryList
from app.dependencies import Transaction
from app.errors import BadRequest
from app.identifiers import IdPath
from app.pagination import Cursor
from app.scopes import ENDPOINTS_MANAGE
from core.vocabulary import DELIVERY_STATUSES


def _status(value: str | None) -> str | None:
    status = optional(value)
    if status is not None and status not in DELIVERY_STATUSES:
        raise BadRequest(f"`status` is one of {', '.join(DELIVERY_STATUSES)}")
    return status


async def _list_page(
    conn: AsyncConnection, session: ConsoleSession, page: DeliveryList, filters: dict[str, str]
) -> Template:
    """The list, each delivery with its endpoint and event type, and the filter's choices."""
    return render(
        session,
        "deliveries.html",
        active="/deliveries",
        page=page,
        labels=await services.labels(conn, session.principal.tenant_id, page.deliveries),
        choices=await access.endpoint_choices(conn, session),
        filters=filters,
        statuses=DELIVERY_STATUSES,
    )


class DeliveryPages(Controller):
    """Deliveries, newest first."""

    path = "/deliveries"
    opt = {"scope": ENDPOINTS_MANAGE}  # noqa: RUF012

    @get("/", name="deliveries")
    async def list_deliveries(
        self,
        session: Session,
        conn: Transaction,
        status: QueryText = "",
        endpoint: QueryText = "",
        endpoint_id: QueryText = "",  # the older links' name for it
        cursor: Cursor = None,
    ) -> Template:
        filters = {"status": _status(status) or "", "endpoint": endpoint or endpoint_id}
        page = await access.deliveries_page(conn, session, cursor=cursor, **filters)
        return await _list_page(conn, session, page, filters)

    @post("/retry", name="deliveries_retry")
    async def retry_matching(
        self, session: Session, form: CheckedForm, conn: Transaction
    ) -> Redirect:
        status, endpoint = form.get("status", ""), form.get("endpoint", "")[:300]
        await access.retry_matching(conn, session, status, endpoint)
        query = urlencode({"status": "pending", "endpoint": endpoint})
        return go(f"{session.base}/deliveries?{query}&notice=bulk_retried")

    @get("/{delivery_id:str}", name="delivery")
    async def show_delivery(
        self, session: Session, conn: Transaction, delivery_id: IdPath
    ) -> Template:
        detail = await access.delivery(conn, session, delivery_id)
        endpoint = await access.delivery_endpoint(conn, session, detail)
        return render(
            session, "delivery.html", active="/deliveries", detail=detail, endpoint=endpoint
        )

    @post("/{delivery_id:str}/retry", name="delivery_retry")
    async def retry(
        self, session: Session, form: CheckedForm, conn: Transaction, delivery_id: IdPath
    ) -> Redirect:
        delivery_uuid = await access.delivery_id(conn, session, delivery_id)
        retried = await services.retry(conn, session.principal.tenant_id, delivery_uuid)
        held = await access.held_by(conn, session, retried.endpoint_id)
        notice = f"retried_{held}" if held else "retried"
        return go(f"{session.base}/deliveries/{delivery_uuid}?notice={notice}")
