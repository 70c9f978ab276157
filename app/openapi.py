"""OpenAPI: the spec at /openapi.json, a docs UI at /docs, auth schemes and error responses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import swagger_ui
from litestar import MediaType, Request, Router, get
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, Schema, SecurityScheme
from litestar.static_files import create_static_files_router

from app.errors import ERROR_STATUS_DESCRIPTIONS, ErrorBody

# Swagger UI's assets come from the installed swagger-ui-py package: /docs works offline.
SWAGGER_ASSETS = Path(swagger_ui.__file__).parent / "static"
ASSETS_PATH = "/docs-assets"

# Every /v1 route accepts the key in either header.
SECURITY = [{"ApiKeyHeader": []}, {"BearerAuth": []}]


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """Request Structs that refuse unknown fields say so: `additionalProperties: false`."""

    def to_openapi_schema(self, field_definition: Any, schema_creator: Any) -> Schema:
        """Litestar's Struct schema, closed when the Struct forbids unknown fields."""
        schema = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        if isinstance(info, msgspec.inspect.StructType) and info.forbid_unknown_fields:
            schema.additional_properties = False
        if isinstance(info, msgspec.inspect.StructType):
            for field in info.fields:
                _constrain_items(schema, field)
        return schema


def _constrain_items(schema: Schema, field: msgspec.inspect.Field) -> None:
    """Litestar drops the constraints of a list's string items (channels, type patterns):
    put the pattern and lengths back on `items`."""
    kinds = field.type.types if isinstance(field.type, msgspec.inspect.UnionType) else (field.type,)
    lists = [kind for kind in kinds if isinstance(kind, msgspec.inspect.ListType)]
    prop = (schema.properties or {}).get(field.encode_name)
    if not lists or not isinstance(lists[0].item_type, msgspec.inspect.StrType) or prop is None:
        return
    item = lists[0].item_type
    for candidate in [prop, *(getattr(prop, "one_of", None) or [])]:
        items = getattr(candidate, "items", None)
        if isinstance(items, Schema):
            items.pattern = items.pattern or item.pattern
            items.min_length = items.min_length or item.min_length
            items.max_length = items.max_length or item.max_length


def error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """The documented error responses of a route, each in the standard envelope; every route
    may also answer 429 (rate limits) and 503 (the database is unreachable)."""
    statuses = tuple(sorted({*statuses, 429, 503}))
    return {
        status: ResponseSpec(
            data_container=ErrorBody,
            description=ERROR_STATUS_DESCRIPTIONS[status],
            generate_examples=False,
        )
        for status in statuses
    }


@get("/openapi.json", include_in_schema=False, media_type=MediaType.JSON)
async def openapi_json(request: Request) -> dict[str, Any]:
    """The OpenAPI document at the conventional top-level path."""
    return request.app.openapi_schema.to_schema()


def docs_assets() -> Router:
    """The Swagger UI files /docs loads, served from the installed package."""
    return create_static_files_router(
        path=ASSETS_PATH, directories=[SWAGGER_ASSETS], include_in_schema=False
    )


def operation_id(handler: HTTPRouteHandler, method: Any, path: Any) -> str:
    """An operation's id: its handler's name, unique over the API (test_openapi checks)."""
    return handler.handler_name


def openapi_config(version: str) -> OpenAPIConfig:
    """Swagger UI at /docs (its own copy of the spec at /docs/openapi.json)."""
    return OpenAPIConfig(
        title="Eventgate",
        version=version,
        description=(
            "Event and webhook gateway on PostgreSQL. Authenticate with `X-API-Key: <key>` "
            "or `Authorization: Bearer <key>`. Errors are "
            '`{"error": {"code", "message", "details", "request_id"}}`.'
        ),
        path="/docs",
        # Each operation is named after its handler (`list_keys`, `ingest_event`): the SDKs'
        # method names.
        operation_id_creator=operation_id,
        render_plugins=[
            SwaggerRenderPlugin(
                path="/",
                js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
                css_url=f"{ASSETS_PATH}/swagger-ui.css",
                standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
                favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
            )
        ],
        components=Components(
            security_schemes={
                "ApiKeyHeader": SecurityScheme(
                    type="apiKey", name="X-API-Key", security_scheme_in="header"
                ),
                "BearerAuth": SecurityScheme(type="http", scheme="bearer"),
            }
        ),
        create_examples=False,
        use_handler_docstrings=True,
    )
