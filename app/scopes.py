"""API key scopes and the guard that enforces them."""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from app.errors import Forbidden
from app.query import strict_query

EVENTS_WRITE = "events:write"
EVENTS_READ = "events:read"
ENDPOINTS_MANAGE = "endpoints:manage"
KEYS_MANAGE = "keys:manage"
SOURCES_MANAGE = "sources:manage"
AUDIT_READ = "audit:read"
ADMIN = "admin"

ALL_SCOPES = (
    EVENTS_WRITE,
    EVENTS_READ,
    ENDPOINTS_MANAGE,
    KEYS_MANAGE,
    SOURCES_MANAGE,
    AUDIT_READ,
    ADMIN,
)


def grants(held: frozenset[str], scope: str) -> bool:
    """True when the held scopes allow `scope` (admin allows everything)."""
    return scope in held or ADMIN in held


async def check_request(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """The app's one guard (Litestar copies the route handler for every guard it runs): query
    parameters written strictly, then the scope the route names, if it names one."""
    await strict_query(connection, handler)
    await require_scope(connection, handler)


async def require_scope(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Guard: the caller's key must hold the scope named in the handler's opt["scope"]."""
    # async on purpose: Litestar runs a sync guard in a worker thread on every request.
    if connection.scope.get("method") == "OPTIONS":
        return  # Litestar's OPTIONS answer reveals nothing and is not authenticated
    scope = handler.opt.get("scope")
    if scope and not grants(connection.user.scopes, scope):
        raise Forbidden(f"this API key lacks the `{scope}` scope", {"required_scope": scope})
