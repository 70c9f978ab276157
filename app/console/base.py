"""What every console and portal page shares: the session as a dependency, forms with CSRF
checks, and the two routers the same page controllers are mounted on."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Router
from litestar.di import NamedDependency, Provide
from litestar.middleware import DefineMiddleware
from litestar.params import QueryParameter

from app.console.forms import Form, provide_form
from app.console.rendering import EXCEPTION_HANDLERS
from app.console.sessions import ConsoleSession


async def provide_session(request: Request) -> ConsoleSession:
    """The signed-in session (or portal link) the router's middleware found."""
    return request.auth


def pages_router(path: str, pages: list[Any], session_middleware: DefineMiddleware) -> Router:
    """Mount page controllers under `path`, each page scope-checked like the API."""
    return Router(
        path,
        route_handlers=pages,
        middleware=[session_middleware],
        exception_handlers=EXCEPTION_HANDLERS,
        dependencies={"form": Provide(provide_form), "session": Provide(provide_session)},
        include_in_schema=False,
    )


Session = NamedDependency[ConsoleSession]
CheckedForm = NamedDependency[Form]
# A search field in a page's query string (an empty string when absent).
QueryText = Annotated[str, QueryParameter(max_length=300)]
