"""Routes under /v1/deliveries."""

from __future__ import annotations

from typing import Annotated

from litestar import get, post
from litestar.params import QueryParameter

from app.api import ApiController
from app.deliveries import services
from app.deliveries.schemas import DeliveryDetail, DeliveryList, DeliveryView, Status
from app.dependencies import Caller, Reader, Transaction
from app.identifiers import IdPath, parse_id, parse_optional_id
from app.openapi import error_responses
from app.pagination import Cursor, Limit
from app.scopes import ENDPOINTS_MANAGE, EVENTS_READ

IdQuery = Annotated[
    str | None, QueryParameter(description="Only this id", schema_extra={"format": "uuid"})
]


class DeliveryController(ApiController):
    """Inspect deliveries and their attempts; send failed or dead ones again."""

    path = "/v1/deliveries"
    tags = ["deliveries"]  # noqa: RUF012 - Litestar reads class attributes

    @get(
        "/",
        summary="List deliveries, newest first",
        opt={"scope": EVENTS_READ},
        responses=error_responses(400, 401, 403),
    )
    async def list_deliveries(
        self,
        reader: Reader,
        caller: Caller,
        limit: Limit = 50,
        cursor: Cursor = None,
        status: Annotated[Status | None, QueryParameter(description="Only this status")] = None,
        endpoint_id: IdQuery = None,
        event_id: IdQuery = None,
    ) -> DeliveryList:
        return await services.list_page(
            reader,
            caller.tenant_id,
            cursor=cursor,
            limit=limit,
            status=status,
            endpoint_id=parse_optional_id(endpoint_id, "endpoint_id"),
            event_id=parse_optional_id(event_id, "event_id"),
        )

    @get(
        "/{delivery_id:str}",
        summary="Get a delivery with all its attempts",
        opt={"scope": EVENTS_READ},
        responses=error_responses(400, 401, 403, 404),
    )
    async def get_delivery(
        self, delivery_id: IdPath, conn: Transaction, caller: Caller
    ) -> DeliveryDetail:
        return await services.get(conn, caller.tenant_id, parse_id(delivery_id, "delivery_id"))

    @post(
        "/{delivery_id:str}/retry",
        summary="Send a dead or failed delivery again now",
        status_code=202,
        opt={"scope": ENDPOINTS_MANAGE},
        responses=error_responses(400, 401, 403, 404, 409),
    )
    async def retry_delivery(
        self, delivery_id: IdPath, conn: Transaction, caller: Caller
    ) -> DeliveryView:
        return await services.retry(conn, caller.tenant_id, parse_id(delivery_id, "delivery_id"))
