"""Routes under /v1/event-types."""

from __future__ import annotations

from typing import Annotated

from litestar import delete, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter

from app.api import ApiController
from app.dependencies import Caller, Transaction
from app.event_types import services
from app.event_types.schemas import EventTypeIn, EventTypeList, EventTypePatch, EventTypeView
from app.media import check_json_body
from app.openapi import error_responses
from app.pagination import Cursor, Limit
from app.scopes import ENDPOINTS_MANAGE, EVENTS_READ


class EventTypeController(ApiController):
    """The catalog of event types and their optional JSON Schemas."""

    path = "/v1/event-types"
    tags = ["event types"]  # noqa: RUF012 - Litestar reads class attributes
    before_request = check_json_body

    @post(
        "/",
        summary="Create an event type",
        opt={"scope": ENDPOINTS_MANAGE},
        responses=error_responses(400, 401, 403, 409, 415),
    )
    async def create_event_type(
        self, data: JSONBody[EventTypeIn], conn: Transaction, caller: Caller
    ) -> EventTypeView:
        return await services.create(conn, caller.tenant_id, data)

    @get(
        "/",
        summary="List event types by name",
        opt={"scope": EVENTS_READ},
        responses=error_responses(400, 401, 403),
    )
    async def list_event_types(
        self,
        conn: Transaction,
        caller: Caller,
        limit: Limit = 50,
        cursor: Cursor = None,
        include_archived: Annotated[
            bool, QueryParameter(description="Also list archived types")
        ] = False,
    ) -> EventTypeList:
        return await services.list_page(conn, caller.tenant_id, cursor, limit, include_archived)

    @get(
        "/{name:str}",
        summary="Get an event type",
        opt={"scope": EVENTS_READ},
        responses=error_responses(401, 403, 404),
    )
    async def get_event_type(
        self, name: FromPath[str], conn: Transaction, caller: Caller
    ) -> EventTypeView:
        return await services.get(conn, caller.tenant_id, name)

    @patch(
        "/{name:str}",
        summary="Change an event type's description, schema or archived flag",
        opt={"scope": ENDPOINTS_MANAGE},
        responses=error_responses(400, 401, 403, 404, 415),
    )
    async def update_event_type(
        self, name: FromPath[str], data: JSONBody[EventTypePatch], conn: Transaction, caller: Caller
    ) -> EventTypeView:
        return await services.update(conn, caller.tenant_id, name, data)

    @delete(
        "/{name:str}",
        summary="Archive an event type (it stays listed with include_archived)",
        status_code=200,
        opt={"scope": ENDPOINTS_MANAGE},
        responses=error_responses(401, 403, 404),
    )
    async def archive_event_type(
        self, name: FromPath[str], conn: Transaction, caller: Caller
    ) -> EventTypeView:
        return await services.archive(conn, caller.tenant_id, name)
