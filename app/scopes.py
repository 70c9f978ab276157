"""API key scopes and the guard that enforces them."""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Scope

from app.errors import Forbidden
from app.query import strict_query
from core.vocabulary import CONSOLE_ROLES

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

# A console role's, never a key's: reading every page of the scopes below without changing
# anything (a viewer sees endpoints, not their secrets; a POST is refused).
VIEW = "console:view"
VIEWABLE = frozenset({EVENTS_READ, ENDPOINTS_MANAGE, SOURCES_MANAGE, SCHEDULES_MANAGE, AUDIT_READ})
READING_METHODS = frozenset({"GET", "HEAD"})

# What each console role may do, in the API's scopes.
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "viewer": frozenset({EVENTS_READ, AUDIT_READ, VIEW}),
    "developer": frozenset(
        {EVENTS_WRITE, EVENTS_READ, ENDPOINTS_MANAGE, SOURCES_MANAGE, SCHEDULES_MANAGE, AUDIT_READ}
    ),
    "admin": frozenset({ADMIN}),
}
ROLES = CONSOLE_ROLES
assert tuple(ROLE_SCOPES) == ROLES


def grants(held: frozenset[str], scope: str, method: str = "POST") -> bool:
    """True when the held scopes allow `scope` (admin allows everything; a viewer's reads)."""
    if scope in held or ADMIN in held:
        return True
    return VIEW in held and method in READING_METHODS and scope in VIEWABLE


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
    # A page that shows a secret is treated as a change: a viewer reads everything else.
    method = "POST" if handler.opt.get("reveals_secret") else scope["method"]
    if required and not grants(scope["user"].scopes, required, method):
        who = "this API key lacks" if scope["user"].user_id is None else "your role lacks"
        raise Forbidden(f"{who} the `{required}` scope", {"required_scope": required})
