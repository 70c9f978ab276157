"""Routes under /v1/sources (managed with a key) and /v1/triggers (a provider's webhooks)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody, Parameter

from app.api import ApiController
from app.dependencies import Caller, Transaction, TriggerService
from app.http_hygiene import NO_COMPRESSION
from app.identifiers import IdPath, parse_id
from app.media import check_json_body
from app.openapi import error_responses
from app.pagination import Cursor, Limit
from app.scopes import SOURCES_MANAGE
from app.sources import services
from app.sources.schemas import (
    RejectionList,
    SourceCreated,
    SourceIn,
    SourceList,
    SourcePatch,
    SourceSecret,
    SourceView,
    TriggerAccepted,
)
from app.sources.triggers import MAX_TRIGGER_BYTES

TokenPath = Annotated[str, Parameter(description="The source's trigger token", max_length=100)]


class SourceController(ApiController):
    """Inbound webhook sources: verification, event types, tokens and rejections."""

    path = "/v1/sources"
    tags = ["sources"]  # noqa: RUF012 - Litestar reads class attributes
    before_request = check_json_body
    opt = {"scope": SOURCES_MANAGE}  # noqa: RUF012

    @post("/", summary="Create a source", responses=error_responses(400, 401, 403, 409, 415))
    async def create_source(
        self, data: JSONBody[SourceIn], conn: Transaction, caller: Caller
    ) -> SourceCreated:
        return await services.create(conn, caller.tenant_id, data)

    @get("/", summary="List sources", responses=error_responses(400, 401, 403))
    async def list_sources(
        self, conn: Transaction, caller: Caller, limit: Limit = 50, cursor: Cursor = None
    ) -> SourceList:
        return await services.list_page(conn, caller.tenant_id, cursor, limit)

    @get("/{source_id:str}", summary="Get a source", responses=error_responses(400, 401, 403, 404))
    async def get_source(self, source_id: IdPath, conn: Transaction, caller: Caller) -> SourceView:
        return await services.get(conn, caller.tenant_id, parse_id(source_id, "source_id"))

    @patch(
        "/{source_id:str}",
        summary="Change a source",
        responses=error_responses(400, 401, 403, 404, 409, 415),
    )
    async def update_source(
        self, source_id: IdPath, data: JSONBody[SourcePatch], conn: Transaction, caller: Caller
    ) -> SourceView:
        source_uuid = parse_id(source_id, "source_id")
        return await services.update(conn, caller.tenant_id, source_uuid, data)

    @delete(
        "/{source_id:str}",
        summary="Delete a source (its trigger URL answers 404 from then on)",
        status_code=200,
        responses=error_responses(400, 401, 403, 404),
    )
    async def delete_source(
        self, source_id: IdPath, conn: Transaction, caller: Caller
    ) -> SourceView:
        return await services.delete(conn, caller.tenant_id, parse_id(source_id, "source_id"))

    @get(
        "/{source_id:str}/secret",
        summary="Get the secret requests are verified with",
        responses=error_responses(400, 401, 403, 404),
    )
    async def get_source_secret(
        self, source_id: IdPath, conn: Transaction, caller: Caller
    ) -> SourceSecret:
        return await services.secret(conn, caller.tenant_id, parse_id(source_id, "source_id"))

    @post(
        "/{source_id:str}/rotate-token",
        summary="Give the source a new trigger URL (the old one stops working)",
        status_code=200,
        responses=error_responses(400, 401, 403, 404),
    )
    async def rotate_source_token(
        self, source_id: IdPath, conn: Transaction, caller: Caller
    ) -> SourceView:
        source_uuid = parse_id(source_id, "source_id")
        return await services.rotate_token(conn, caller.tenant_id, source_uuid)

    @get(
        "/{source_id:str}/rejections",
        summary="The newest refused trigger requests (at most 100)",
        responses=error_responses(400, 401, 403, 404),
    )
    async def list_rejections(
        self, source_id: IdPath, conn: Transaction, caller: Caller
    ) -> RejectionList:
        return await services.rejections(conn, caller.tenant_id, parse_id(source_id, "source_id"))


class TriggerController(Controller):
    """Where providers send webhooks: the token in the path is the only credential."""

    path = "/v1/triggers"
    tags = ["sources"]  # noqa: RUF012

    @post(
        "/{token:str}",
        summary="Receive a provider's webhook (JSON or form, at most 512 KiB)",
        status_code=202,
        request_max_body_size=MAX_TRIGGER_BYTES,
        opt={NO_COMPRESSION: True},
        responses={
            200: ResponseSpec(TriggerAccepted, description="A redelivery: the first event's id"),
            **error_responses(400, 401, 404, 413, 415),
        },
    )
    async def receive_trigger(
        self, token: TokenPath, request: Request, triggers: TriggerService
    ) -> Response[TriggerAccepted]:
        status, body, headers = await triggers.receive(request, token)
        return Response(body, status_code=status, headers=headers)
