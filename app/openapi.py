"""OpenAPI: the spec at /openapi.json, a docs UI at /docs, auth schemes and error responses."""

from __future__ import annotations

from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from app.errors import ERROR_STATUS_DESCRIPTIONS, ErrorBody


def error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """The documented error responses of a route, each in the standard envelope."""
    return {
        status: ResponseSpec(
            data_container=ErrorBody,
            description=ERROR_STATUS_DESCRIPTIONS[status],
            generate_examples=False,
        )
        for status in statuses
    }


def openapi_config(version: str) -> OpenAPIConfig:
    """Serve the spec at /openapi.json and Swagger UI at /docs."""
    return OpenAPIConfig(
        title="Eventgate",
        version=version,
        description=(
            "Event and webhook gateway on PostgreSQL. Authenticate with `X-API-Key: <key>` "
            "or `Authorization: Bearer <key>`. Errors are "
            '`{"error": {"code", "message", "details", "request_id"}}`.'
        ),
        path="/",
        render_plugins=[SwaggerRenderPlugin(path="/docs")],
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
