"""Routes under /v1/endpoints."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, delete, get, patch, post
from litestar.params import JSONBody, QueryParameter

from app.api import ApiController
from app.dependencies import AppSettings, Caller, Reader, Transaction
from app.endpoints import services
from app.endpoints.schemas import (
    EndpointCreated,
    EndpointIn,
    EndpointList,
    EndpointPatch,
    EndpointView,
    Recovered,
    RecoverIn,
    RotateSecretIn,
    SecretView,
    TestSent,
)
from app.identifiers import IdPath, parse_id
from app.media import check_json_body
from app.openapi import error_responses
from app.pagination import Cursor, Limit
from app.request_id import request_id
from app.scopes import ENDPOINTS_MANAGE

# Only endpoints of this kind (http, ...).
KindQuery = Annotated[str | None, QueryParameter(max_length=50)]


class EndpointController(ApiController):
    """Webhook endpoints: subscriptions, secrets, pausing, recovery and test sends."""

    path = "/v1/endpoints"
    tags = ["endpoints"]  # noqa: RUF012 - Litestar reads class attributes
    before_request = check_json_body
    opt = {"scope": ENDPOINTS_MANAGE}  # noqa: RUF012

    @post("/", summary="Create an endpoint", responses=error_responses(400, 401, 403, 415))
    async def create_endpoint(
        self, data: JSONBody[EndpointIn], conn: Transaction, caller: Caller, settings: AppSettings
    ) -> EndpointCreated:
        return await services.create(conn, caller.tenant_id, data, settings)

    @get("/", summary="List endpoints", responses=error_responses(400, 401, 403))
    async def list_endpoints(
        self,
        reader: Reader,
        caller: Caller,
        limit: Limit = 50,
        cursor: Cursor = None,
        kind: KindQuery = None,
    ) -> EndpointList:
        return await services.list_page(reader, caller.tenant_id, cursor, limit, kind=kind)

    @get(
        "/{endpoint_id:str}",
        summary="Get an endpoint",
        responses=error_responses(400, 401, 403, 404),
    )
    async def get_endpoint(
        self, endpoint_id: IdPath, conn: Transaction, caller: Caller
    ) -> EndpointView:
        return await services.get(conn, caller.tenant_id, parse_id(endpoint_id, "endpoint_id"))

    @patch(
        "/{endpoint_id:str}",
        summary="Change an endpoint",
        responses=error_responses(400, 401, 403, 404, 415),
    )
    async def update_endpoint(
        self,
        endpoint_id: IdPath,
        data: JSONBody[EndpointPatch],
        conn: Transaction,
        caller: Caller,
        settings: AppSettings,
    ) -> EndpointView:
        endpoint_uuid = parse_id(endpoint_id, "endpoint_id")
        return await services.update(conn, caller.tenant_id, endpoint_uuid, data, settings)

    @delete(
        "/{endpoint_id:str}",
        summary="Delete an endpoint (its unfinished deliveries end as dead)",
        status_code=200,
        responses=error_responses(400, 401, 403, 404),
    )
    async def delete_endpoint(
        self, endpoint_id: IdPath, conn: Transaction, caller: Caller
    ) -> EndpointView:
        return await services.delete(conn, caller.tenant_id, parse_id(endpoint_id, "endpoint_id"))

    @get(
        "/{endpoint_id:str}/secret",
        summary="Get the signing secret (and the previous one during a rotation)",
        responses=error_responses(400, 401, 403, 404),
    )
    async def get_secret(
        self, endpoint_id: IdPath, conn: Transaction, caller: Caller
    ) -> SecretView:
        return await services.secrets(conn, caller.tenant_id, parse_id(endpoint_id, "endpoint_id"))

    @post(
        "/{endpoint_id:str}/rotate-secret",
        summary="Rotate the signing secret (the old one also signs for 24 hours)",
        status_code=200,
        responses=error_responses(400, 401, 403, 404, 415),
    )
    async def rotate_secret(
        self,
        endpoint_id: IdPath,
        conn: Transaction,
        caller: Caller,
        data: JSONBody[RotateSecretIn | None] = None,
    ) -> SecretView:
        endpoint_uuid = parse_id(endpoint_id, "endpoint_id")
        wanted = data or RotateSecretIn()
        return await services.rotate_secret(conn, caller.tenant_id, endpoint_uuid, wanted)

    @post(
        "/{endpoint_id:str}/disable",
        summary="Pause an endpoint (its deliveries wait; nothing is dropped)",
        status_code=200,
        responses=error_responses(400, 401, 403, 404),
    )
    async def disable_endpoint(
        self, endpoint_id: IdPath, conn: Transaction, caller: Caller
    ) -> EndpointView:
        return await services.disable(conn, caller.tenant_id, parse_id(endpoint_id, "endpoint_id"))

    @post(
        "/{endpoint_id:str}/enable",
        summary="Resume an endpoint (waiting deliveries go now)",
        status_code=200,
        responses=error_responses(400, 401, 403, 404),
    )
    async def enable_endpoint(
        self, endpoint_id: IdPath, conn: Transaction, caller: Caller
    ) -> EndpointView:
        return await services.enable(conn, caller.tenant_id, parse_id(endpoint_id, "endpoint_id"))

    @post(
        "/{endpoint_id:str}/recover",
        summary="Send again every dead delivery of the endpoint since a time",
        status_code=202,
        responses=error_responses(400, 401, 403, 404, 415),
    )
    async def recover_endpoint(
        self,
        endpoint_id: IdPath,
        data: JSONBody[RecoverIn],
        request: Request,
        conn: Transaction,
        caller: Caller,
    ) -> Recovered:
        endpoint_uuid = parse_id(endpoint_id, "endpoint_id")
        count = await services.recover(conn, caller.tenant_id, endpoint_uuid, data.since)
        return Recovered(endpoint_uuid, count, request_id(request.scope))

    @post(
        "/{endpoint_id:str}/test",
        summary="Send a signed test event to this endpoint",
        status_code=202,
        responses=error_responses(400, 401, 403, 404, 409),
    )
    async def test_endpoint(
        self, endpoint_id: IdPath, request: Request, conn: Transaction, caller: Caller
    ) -> TestSent:
        event_id, delivery_id = await services.send_test(
            conn, caller.tenant_id, parse_id(endpoint_id, "endpoint_id")
        )
        return TestSent(event_id, delivery_id, request_id(request.scope))
