"""Routes under /v1/deliveries."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, QueryParameter

from app.auth import api_key_auth
from app.deliveries.schemas import AttemptView, DeliveryDetail, DeliveryList, DeliveryView, Status
from app.dependencies import Caller, Transaction
from app.errors import Conflict, NotFound
from app.identifiers import parse_id
from app.openapi import SECURITY, error_responses
from app.pagination import Cursor, Limit, decode_cursor, page_of
from app.scopes import ENDPOINTS_MANAGE, EVENTS_READ, require_scope
from db import deliveries
from workers.delivery import wake


def view(row: deliveries.Delivery) -> DeliveryView:
    """The public view of a delivery."""
    return msgspec.convert(msgspec.structs.asdict(row), DeliveryView)


class DeliveryController(Controller):
    """Inspect deliveries and their attempts; send failed or dead ones again."""

    path = "/v1/deliveries"
    tags = ["deliveries"]  # noqa: RUF012 - Litestar reads class attributes
    guards = [require_scope]  # noqa: RUF012
    middleware = [api_key_auth]  # noqa: RUF012
    security = SECURITY

    @get(
        "/",
        summary="List deliveries, newest first",
        opt={"scope": EVENTS_READ},
        responses=error_responses(400, 401, 403),
    )
    async def list_deliveries(
        self,
        conn: Transaction,
        caller: Caller,
        limit: Limit = 50,
        cursor: Cursor = None,
        status: Annotated[Status | None, QueryParameter(description="Only this status")] = None,
        endpoint_id: Annotated[str | None, QueryParameter(description="Only this endpoint")] = None,
        event_id: Annotated[str | None, QueryParameter(description="Only this event")] = None,
    ) -> DeliveryList:
        rows = await deliveries.list_page(
            conn,
            caller.tenant_id,
            before=decode_cursor(cursor),
            limit=limit + 1,
            status=status,
            endpoint_id=parse_id(endpoint_id, "endpoint_id") if endpoint_id else None,
            event_id=parse_id(event_id, "event_id") if event_id else None,
        )
        page, pagination = page_of(rows, limit, lambda row: row.id)
        return DeliveryList([view(r) for r in page], pagination)

    @get(
        "/{delivery_id:str}",
        summary="Get a delivery with all its attempts",
        opt={"scope": EVENTS_READ},
        responses=error_responses(400, 401, 403, 404),
    )
    async def get_delivery(
        self, delivery_id: FromPath[str], conn: Transaction, caller: Caller
    ) -> DeliveryDetail:
        row = await deliveries.get(conn, caller.tenant_id, parse_id(delivery_id, "delivery_id"))
        if row is None:
            raise NotFound("no such delivery")
        attempts = await deliveries.attempts(conn, caller.tenant_id, row)
        return DeliveryDetail(
            view(row), [msgspec.convert(msgspec.structs.asdict(a), AttemptView) for a in attempts]
        )

    @post(
        "/{delivery_id:str}/retry",
        summary="Send a dead or failed delivery again now",
        status_code=202,
        opt={"scope": ENDPOINTS_MANAGE},
        responses=error_responses(400, 401, 403, 404, 409),
    )
    async def retry_delivery(
        self, delivery_id: FromPath[str], conn: Transaction, caller: Caller
    ) -> DeliveryView:
        delivery_uuid = parse_id(delivery_id, "delivery_id")
        row = await deliveries.retry(conn, caller.tenant_id, delivery_uuid)
        if row is None:
            if await deliveries.get(conn, caller.tenant_id, delivery_uuid) is None:
                raise NotFound("no such delivery")
            raise Conflict("only a dead or failed delivery can be retried")
        await wake(conn, [row.queue])
        return view(row)
