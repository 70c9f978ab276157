"""API key scopes and the guard that enforces them."""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Scope

from app.errors import Forbidden
from app.query import strict_query

EVENTS_WRITE = "events:write"
EVENTS_READ = "events:read"
ENDPOINTS_MANAGE = "endpoints:manage"
KEYS_MANAGE = "keys:manage"
SOURCES_MANAGE = "sources:manage"
AUDIT_READ = "audit:read"
SCHEDULES_MANAGE = "schedules:manage"
ADMIN = "admin"

ALL_SCOPES = (
    EVENTS_WRITE,
    EVENTS_READ,
    ENDPOINTS_MANAGE,
    KEYS_MANAGE,
    SOURCES_MANAGE,
    AUDIT_READ,
    SCHEDULES_MANAGE,
    ADMIN,
)


def grants(held: frozenset[str], scope: str) -> bool:
    """True when the held scopes allow `scope` (admin allows everything)."""
    return scope in held or ADMIN in held


async def check_request(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """The guard of every route outside the API edge (which runs `check_route` itself)."""
    # async on purpose: Litestar runs a sync guard in a worker thread on every request.
    await check_route(connection.scope, handler)


async def check_route(scope: Scope, handler: BaseRouteHandler) -> None:
    """Query parameters written strictly, then the scope the route names, if it names one."""
    strict_query(scope, handler)
    if scope["method"] == "OPTIONS":
        return  # Litestar's OPTIONS answer reveals nothing and is not authenticated
    required = handler.opt.get("scope")
    if required and not grants(scope["user"].scopes, required):
        raise Forbidden(f"this API key lacks the `{required}` scope", {"required_scope": required})
