"""Pages under /console/endpoints (and a portal's /portal/{token}/endpoints): list with
health, create, edit, enable, disable, delete, reveal and rotate the secret, send a test
event, recover dead letters."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from litestar import Controller, get, post
from litestar.response import Redirect, Template
from psycopg import AsyncConnection

from app.console import access
from app.console.base import CheckedForm, Session
from app.console.charts import delivery_chart
from app.console.forms import Form, refusal, whole_number
from app.console.pages.overview import ChartView
from app.console.rendering import go, render
from app.dependencies import AppSettings, Transaction
from app.endpoints import services
from app.endpoints.schemas import RotateSecretIn
from app.errors import BadRequest
from app.identifiers import IdPath
from app.pagination import Cursor
from app.scopes import ENDPOINTS_MANAGE

RECENT_DELIVERIES = 20


def _back(session: Session, endpoint_id: object, notice: str) -> Redirect:
    return go(f"{session.base}/endpoints/{endpoint_id}?notice={notice}")


async def _on_endpoint(
    conn: AsyncConnection,
    session: Session,
    endpoint_id: str,
    act: Callable[[AsyncConnection, uuid.UUID, uuid.UUID], Awaitable[object]],
    notice: str,
) -> Redirect:
    """Do `act` to an endpoint the session may reach, then show the endpoint."""
    endpoint_uuid = await access.endpoint_id(conn, session, endpoint_id)
    await act(conn, session.principal.tenant_id, endpoint_uuid)
    return _back(session, endpoint_uuid, notice)


def _form_again(session: Session, endpoint: object, form: Form, refused: BadRequest) -> Template:
    """The form again, as it was filled in, with the error at the field it names (a config,
    which may hold credentials, is not shown again)."""
    typed = {name: value for name, value in form.items() if name not in ("config", "csrf_token")}
    return render(
        session,
        "endpoint_form.html",
        active="/endpoints",
        endpoint=endpoint,
        typed=typed,
        **refusal(refused),
    )


async def _send_test(conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
    await services.send_test(conn, tenant_id, endpoint_id)


class EndpointPages(Controller):
    """One tenant's (or one portal channel's) endpoints."""

    path = "/endpoints"
    opt = {"scope": ENDPOINTS_MANAGE}  # noqa: RUF012

    @get("/", name="endpoints")
    async def list_endpoints(
        self, session: Session, conn: Transaction, cursor: Cursor = None
    ) -> Template:
        page = await access.endpoints_page(conn, session, cursor)
        return render(session, "endpoints.html", active="/endpoints", page=page)

    @get("/new", name="endpoint_new")
    async def new_endpoint(self, session: Session) -> Template:
        return render(session, "endpoint_form.html", active="/endpoints", endpoint=None, values={})

    @post("/", name="endpoint_create")
    async def create_endpoint(
        self, session: Session, form: CheckedForm, conn: Transaction, settings: AppSettings
    ) -> Redirect | Template:
        try:
            data = access.new_endpoint(session, form)
            created = await services.create(conn, session.principal.tenant_id, data, settings)
        except BadRequest as refused:  # refused before anything was written
            return _form_again(session, None, form, refused)
        return _back(session, created.endpoint.id, "created")

    @get("/{endpoint_id:str}", name="endpoint")
    async def show_endpoint(
        self, session: Session, conn: Transaction, endpoint_id: IdPath, view: ChartView = "minute"
    ) -> Template:
        endpoint = await access.endpoint(conn, session, endpoint_id)
        recent = await access.recent_deliveries(conn, session, endpoint)
        chart = await delivery_chart(conn, session.principal.tenant_id, view, endpoint.id)
        return render(
            session,
            "endpoint.html",
            active="/endpoints",
            endpoint=endpoint,
            deliveries=recent.deliveries[:RECENT_DELIVERIES],
            chart=chart,
        )

    @get("/{endpoint_id:str}/edit", name="endpoint_edit")
    async def edit_endpoint(
        self, session: Session, conn: Transaction, endpoint_id: IdPath
    ) -> Template:
        endpoint = await access.endpoint(conn, session, endpoint_id)
        return render(session, "endpoint_form.html", active="/endpoints", endpoint=endpoint)

    @post("/{endpoint_id:str}", name="endpoint_update")
    async def update_endpoint(
        self,
        session: Session,
        form: CheckedForm,
        conn: Transaction,
        settings: AppSettings,
        endpoint_id: IdPath,
    ) -> Redirect:
        endpoint_uuid = await access.endpoint_id(conn, session, endpoint_id)
        try:
            changes = access.endpoint_changes(session, form)
            await services.update(
                conn, session.principal.tenant_id, endpoint_uuid, changes, settings
            )
        except BadRequest as refused:  # refused before anything was written
            endpoint = await access.endpoint(conn, session, endpoint_id)
            return _form_again(session, endpoint, form, refused)
        return _back(session, endpoint_uuid, "saved")

    @post("/{endpoint_id:str}/disable", name="endpoint_disable")
    async def disable_endpoint(
        self, session: Session, form: CheckedForm, conn: Transaction, endpoint_id: IdPath
    ) -> Redirect:
        return await _on_endpoint(conn, session, endpoint_id, services.disable, "disabled")

    @post("/{endpoint_id:str}/enable", name="endpoint_enable")
    async def enable_endpoint(
        self, session: Session, form: CheckedForm, conn: Transaction, endpoint_id: IdPath
    ) -> Redirect:
        return await _on_endpoint(conn, session, endpoint_id, services.enable, "enabled")

    @post("/{endpoint_id:str}/delete", name="endpoint_delete")
    async def delete_endpoint(
        self, session: Session, form: CheckedForm, conn: Transaction, endpoint_id: IdPath
    ) -> Redirect:
        endpoint_uuid = await access.endpoint_id(conn, session, endpoint_id)
        await services.delete(conn, session.principal.tenant_id, endpoint_uuid)
        return go(f"{session.base}/endpoints?notice=deleted")

    @get("/{endpoint_id:str}/secret", name="endpoint_secret", opt={"reveals_secret": True})
    async def reveal_secret(
        self, session: Session, conn: Transaction, endpoint_id: IdPath
    ) -> Template:
        endpoint = await access.endpoint(conn, session, endpoint_id)
        secrets = await services.secrets(conn, session.principal.tenant_id, endpoint.id)
        return render(
            session, "secret.html", active="/endpoints", endpoint=endpoint, secrets=secrets
        )

    @post("/{endpoint_id:str}/rotate-secret", name="endpoint_rotate_secret")
    async def rotate_secret(
        self, session: Session, form: CheckedForm, conn: Transaction, endpoint_id: IdPath
    ) -> Redirect:
        endpoint_uuid = await access.endpoint_id(conn, session, endpoint_id)
        wanted = RotateSecretIn()  # a new secret of the endpoint's own scheme
        await services.rotate_secret(conn, session.principal.tenant_id, endpoint_uuid, wanted)
        return go(f"{session.base}/endpoints/{endpoint_uuid}/secret?notice=rotated")

    @post("/{endpoint_id:str}/test", name="endpoint_test")
    async def send_test(
        self, session: Session, form: CheckedForm, conn: Transaction, endpoint_id: IdPath
    ) -> Redirect:
        return await _on_endpoint(conn, session, endpoint_id, _send_test, "test_sent")

    @post("/{endpoint_id:str}/recover", name="endpoint_recover")
    async def recover(
        self, session: Session, form: CheckedForm, conn: Transaction, endpoint_id: IdPath
    ) -> Redirect:
        endpoint_uuid = await access.endpoint_id(conn, session, endpoint_id)
        days = min(whole_number(form, "days") or 7, 90)
        since = datetime.now(UTC) - timedelta(days=days)
        await services.recover(conn, session.principal.tenant_id, endpoint_uuid, since)
        return _back(session, endpoint_uuid, "recovered")
