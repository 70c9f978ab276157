"""Routes under /v1/endpoints/{endpoint_id}/transformation and
/v1/sources/{source_id}/transformation."""

from __future__ import annotations

from litestar import delete, get, post, put
from litestar.params import JSONBody

from app.api import WITHOUT_IDEMPOTENCY, ApiController
from app.dependencies import Caller, Pool, Sandboxes, Transaction
from app.identifiers import IdPath, parse_id
from app.media import check_json_body
from app.openapi import error_responses
from app.pagination import Cursor, Limit
from app.scopes import ENDPOINTS_MANAGE, SOURCES_MANAGE
from app.transformations import services
from app.transformations.schemas import (
    EndpointTransformationTest,
    SourceTransformationTest,
    TransformationIn,
    TransformationTestResult,
    TransformationVersionList,
    TransformationView,
)

READ = error_responses(400, 401, 403, 404)
WRITE = error_responses(400, 401, 403, 404, 415)


class EndpointTransformationController(ApiController):
    """An endpoint's JavaScript transformation: run on each delivery before it is signed."""

    path = "/v1/endpoints/{endpoint_id:str}/transformation"
    tags = ["endpoints"]  # noqa: RUF012 - Litestar reads class attributes
    before_request = check_json_body
    middleware = WITHOUT_IDEMPOTENCY  # PUT and DELETE repeat safely; a test changes nothing
    opt = {"scope": ENDPOINTS_MANAGE}  # noqa: RUF012

    @get("/", summary="Get an endpoint's transformation", responses=READ)
    async def get_endpoint_transformation(
        self, endpoint_id: IdPath, conn: Transaction, caller: Caller
    ) -> TransformationView:
        owner = parse_id(endpoint_id, "endpoint_id")
        return await services.current(conn, caller.tenant_id, "endpoint", owner)

    @put("/", summary="Set an endpoint's transformation (a new version)", responses=WRITE)
    async def set_endpoint_transformation(
        self,
        endpoint_id: IdPath,
        data: JSONBody[TransformationIn],
        pool: Pool,
        sandbox: Sandboxes,
        caller: Caller,
    ) -> TransformationView:
        owner = parse_id(endpoint_id, "endpoint_id")
        tenant = caller.tenant_id
        return await services.replace(pool, sandbox, tenant, "endpoint", owner, data.code)

    @delete("/", summary="Remove an endpoint's transformation", status_code=200, responses=READ)
    async def remove_endpoint_transformation(
        self, endpoint_id: IdPath, pool: Pool, sandbox: Sandboxes, caller: Caller
    ) -> TransformationView:
        owner = parse_id(endpoint_id, "endpoint_id")
        return await services.replace(pool, sandbox, caller.tenant_id, "endpoint", owner, None)

    @get("/versions", summary="List an endpoint's transformation versions", responses=READ)
    async def list_endpoint_transformation_versions(
        self,
        endpoint_id: IdPath,
        conn: Transaction,
        caller: Caller,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> TransformationVersionList:
        owner = parse_id(endpoint_id, "endpoint_id")
        tenant = caller.tenant_id
        return await services.versions(conn, tenant, "endpoint", owner, cursor, limit)

    @post(
        "/test",
        summary="Run an endpoint's transformation on a sample event",
        status_code=200,
        responses=WRITE,
    )
    async def test_endpoint_transformation(
        self,
        endpoint_id: IdPath,
        data: JSONBody[EndpointTransformationTest],
        pool: Pool,
        sandbox: Sandboxes,
        caller: Caller,
    ) -> TransformationTestResult:
        owner = parse_id(endpoint_id, "endpoint_id")
        return await services.test_endpoint(pool, sandbox, caller.tenant_id, owner, data)


class SourceTransformationController(ApiController):
    """A source's JavaScript transformation: run on each trigger request before its event
    is stored."""

    path = "/v1/sources/{source_id:str}/transformation"
    tags = ["sources"]  # noqa: RUF012 - Litestar reads class attributes
    before_request = check_json_body
    middleware = WITHOUT_IDEMPOTENCY
    opt = {"scope": SOURCES_MANAGE}  # noqa: RUF012

    @get("/", summary="Get a source's transformation", responses=READ)
    async def get_source_transformation(
        self, source_id: IdPath, conn: Transaction, caller: Caller
    ) -> TransformationView:
        owner = parse_id(source_id, "source_id")
        return await services.current(conn, caller.tenant_id, "source", owner)

    @put("/", summary="Set a source's transformation (a new version)", responses=WRITE)
    async def set_source_transformation(
        self,
        source_id: IdPath,
        data: JSONBody[TransformationIn],
        pool: Pool,
        sandbox: Sandboxes,
        caller: Caller,
    ) -> TransformationView:
        owner = parse_id(source_id, "source_id")
        tenant = caller.tenant_id
        return await services.replace(pool, sandbox, tenant, "source", owner, data.code)

    @delete("/", summary="Remove a source's transformation", status_code=200, responses=READ)
    async def remove_source_transformation(
        self, source_id: IdPath, pool: Pool, sandbox: Sandboxes, caller: Caller
    ) -> TransformationView:
        owner = parse_id(source_id, "source_id")
        return await services.replace(pool, sandbox, caller.tenant_id, "source", owner, None)

    @get("/versions", summary="List a source's transformation versions", responses=READ)
    async def list_source_transformation_versions(
        self,
        source_id: IdPath,
        conn: Transaction,
        caller: Caller,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> TransformationVersionList:
        owner = parse_id(source_id, "source_id")
        tenant = caller.tenant_id
        return await services.versions(conn, tenant, "source", owner, cursor, limit)

    @post(
        "/test",
        summary="Run a source's transformation on a sample request",
        status_code=200,
        responses=WRITE,
    )
    async def test_source_transformation(
        self,
        source_id: IdPath,
        data: JSONBody[SourceTransformationTest],
        pool: Pool,
        sandbox: Sandboxes,
        caller: Caller,
    ) -> TransformationTestResult:
        owner = parse_id(source_id, "source_id")
        return await services.test_source(pool, sandbox, caller.tenant_id, owner, data)
