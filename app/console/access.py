"""What a console or portal session may reach: the console sees its tenant (the API's own
services), a portal only endpoints with its channel and their deliveries (NotFound for the
rest, exactly as for another tenant's ids)."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import AsyncConnection

from app.console.forms import Form, json_object, to_struct, whole_number, words
from app.console.sessions import ConsoleSession
from app.deliveries import services as deliveries
from app.deliveries.schemas import DeliveryDetail, DeliveryList
from app.endpoints import services as endpoints
from app.endpoints.schemas import EndpointIn, EndpointList, EndpointPatch, EndpointView
from app.errors import NotFound
from app.identifiers import parse_id

PAGE_SIZE = 50


async def endpoint(
    conn: AsyncConnection, session: ConsoleSession, endpoint_id: str
) -> EndpointView:
    """An endpoint the session may see, or NotFound."""
    view = await endpoints.get(conn, session.principal.tenant_id, parse_id(endpoint_id, "id"))
    if session.channel is not None and session.channel not in view.channels:
        raise NotFound("no such endpoint")
    return view


async def endpoint_id(conn: AsyncConnection, session: ConsoleSession, given: str) -> uuid.UUID:
    """The id of an endpoint the session may act on. The console's actions need no lookup
    of their own (the service refuses another tenant's id); a portal's checks the channel."""
    if session.channel is None:
        return parse_id(given, "id")
    return (await endpoint(conn, session, given)).id


async def endpoints_page(
    conn: AsyncConnection, session: ConsoleSession, cursor: str | None
) -> EndpointList:
    """A page of the endpoints the session may see."""
    tenant_id = session.principal.tenant_id
    return await endpoints.list_page(conn, tenant_id, cursor, PAGE_SIZE, session.channel)


async def deliveries_page(
    conn: AsyncConnection,
    session: ConsoleSession,
    *,
    cursor: str | None,
    status: str | None,
    endpoint: str | None,
) -> DeliveryList:
    """A page of deliveries, newest first, of the endpoint named by id or by a piece of its
    URL or description; a portal's only through its own endpoints."""
    endpoint_uuid, endpoint_ids = await _endpoint_filter(conn, session, endpoint or "")
    if session.channel is not None and endpoint_uuid is None and endpoint_ids is None:
        raise NotFound("choose one of your endpoints to see its deliveries")
    return await _deliveries(conn, session, cursor, status, endpoint_uuid, endpoint_ids)


async def _endpoint_filter(
    conn: AsyncConnection, session: ConsoleSession, given: str
) -> tuple[uuid.UUID | None, list[uuid.UUID] | None]:
    """An endpoint id, or the endpoints a text names (none when nothing was typed)."""
    text = given.strip()
    if not text:
        return None, None
    try:
        endpoint_uuid = uuid.UUID(text)
    except ValueError:
        tenant_id = session.principal.tenant_id
        return None, await endpoints.matching(conn, tenant_id, text, session.channel)
    if session.channel is not None:
        await endpoint(conn, session, str(endpoint_uuid))
    return endpoint_uuid, None


async def retry_matching(
    conn: AsyncConnection, session: ConsoleSession, status: str, endpoint: str
) -> int:
    """Send again (up to 1,000 of) the dead or failed deliveries a list's filter shows."""
    endpoint_uuid, endpoint_ids = await _endpoint_filter(conn, session, endpoint)
    if endpoint_uuid is not None:
        endpoint_ids = [endpoint_uuid]
    elif endpoint_ids is None:
        tenant_id = session.principal.tenant_id
        endpoint_ids = await endpoints.matching(conn, tenant_id, "", session.channel, 100_000)
    tenant_id = session.principal.tenant_id
    return await deliveries.retry_matching(conn, tenant_id, endpoint_ids, status)


async def recent_deliveries(
    conn: AsyncConnection, session: ConsoleSession, endpoint: EndpointView
) -> DeliveryList:
    """The newest deliveries of an endpoint the session has already been shown."""
    return await _deliveries(conn, session, None, None, endpoint.id)


async def _deliveries(
    conn: AsyncConnection,
    session: ConsoleSession,
    cursor: str | None,
    status: str | None,
    endpoint_uuid: uuid.UUID | None,
    endpoint_ids: list[uuid.UUID] | None = None,
) -> DeliveryList:
    return await deliveries.list_page(
        conn,
        session.principal.tenant_id,
        cursor=cursor,
        limit=PAGE_SIZE,
        status=status or None,
        endpoint_id=endpoint_uuid,
        endpoint_ids=endpoint_ids,
        event_id=None,
    )


async def endpoint_choices(conn: AsyncConnection, session: ConsoleSession) -> EndpointList:
    """The endpoints a filter offers to pick from (the first page)."""
    return await endpoints_page(conn, session, None)


async def delivery_id(conn: AsyncConnection, session: ConsoleSession, given: str) -> uuid.UUID:
    """The id of a delivery the session may act on (looked up only for a portal)."""
    if session.channel is None:
        return parse_id(given, "id")
    return (await delivery(conn, session, given)).delivery.id


async def delivery(
    conn: AsyncConnection, session: ConsoleSession, delivery_id: str
) -> DeliveryDetail:
    """A delivery with its attempts, when the session may see its endpoint."""
    tenant_id = session.principal.tenant_id
    detail = await deliveries.get(conn, tenant_id, parse_id(delivery_id, "id"))
    if session.channel is not None:
        try:
            await endpoint(conn, session, str(detail.delivery.endpoint_id))
        except NotFound:
            raise NotFound("no such delivery") from None
    return detail


async def delivery_endpoint(
    conn: AsyncConnection, session: ConsoleSession, detail: DeliveryDetail
) -> EndpointView | None:
    """The endpoint of a delivery already shown (None once the endpoint is deleted)."""
    try:
        return await endpoint(conn, session, str(detail.delivery.endpoint_id))
    except NotFound:
        return None


async def held_by(
    conn: AsyncConnection, session: ConsoleSession, endpoint_id: uuid.UUID
) -> str | None:
    """Why the endpoint's deliveries wait whatever their next try says: "disabled", an
    open "circuit", or None."""
    try:
        view = await endpoint(conn, session, str(endpoint_id))
    except NotFound:
        return None
    if not view.is_active:
        return "disabled"
    return "circuit" if view.circuit == "open" else None


def _endpoint_fields(session: ConsoleSession, fields: Form) -> dict[str, Any]:
    values: dict[str, Any] = {
        "description": fields.get("description", "").strip(),
        "event_types": words(fields.get("event_types")),
        "filter": json_object(fields, "filter"),
        "rate_limit_per_s": whole_number(fields, "rate_limit_per_s"),
        "ordered": fields.get("ordered") == "on",
    }
    kind = fields.get("kind", "http")
    if kind == "http":
        values["url"] = fields.get("url", "").strip()
    # Credentials are never shown, so an empty config leaves the stored one as it is.
    config = json_object(fields, "config")
    if config is not None:
        values["config"] = {**config, "kind": kind}
    if session.channel is None:
        values["channels"] = words(fields.get("channels"))
    return values


def new_endpoint(session: ConsoleSession, fields: Form) -> EndpointIn:
    """The endpoint a form creates: a portal's always carries its channel, and only it."""
    values = _endpoint_fields(session, fields)
    if session.channel is not None:
        values["channels"] = [session.channel]
    return to_struct(values, EndpointIn)


def endpoint_changes(session: ConsoleSession, fields: Form) -> EndpointPatch:
    """The changes an edit form makes (a portal cannot change channels)."""
    return to_struct(_endpoint_fields(session, fields), EndpointPatch)
