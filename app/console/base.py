"""What every console page controller shares: the session, the scope guard, forms with
CSRF checks, and errors rendered as pages."""

from __future__ import annotations

from litestar import Controller, Request
from litestar.di import NamedDependency, Provide

from app.console.forms import Form, provide_form
from app.console.rendering import EXCEPTION_HANDLERS
from app.console.sessions import ConsoleSession, console_session
from app.scopes import require_scope


async def provide_session(request: Request) -> ConsoleSession:
    """The signed-in session the middleware found."""
    return request.auth


class ConsolePages(Controller):
    """Base of the console's page controllers (each sets path and opt["scope"])."""

    include_in_schema = False
    middleware = [console_session]  # noqa: RUF012
    guards = [require_scope]  # noqa: RUF012
    exception_handlers = EXCEPTION_HANDLERS
    dependencies = {  # noqa: RUF012
        "form": Provide(provide_form),
        "session": Provide(provide_session),
    }


Session = NamedDependency[ConsoleSession]
CheckedForm = NamedDependency[Form]
