"""How console and portal pages are rendered: one Jinja environment (autoescaped), the page
headers (CSP without inline scripts, framing, no caching), and errors as pages."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Request
from litestar.exceptions import HTTPException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from app.console.sessions import CONSOLE_PATH, ConsoleSession, NotSignedIn
from app.errors import EventgateError, unstorable_message
from app.scopes import (
    ADMIN,
    AUDIT_READ,
    ENDPOINTS_MANAGE,
    EVENTS_READ,
    KEYS_MANAGE,
    SCHEDULES_MANAGE,
    SOURCES_MANAGE,
    grants,
)

HERE = Path(__file__).parent
STATIC_PATH = f"{CONSOLE_PATH}/static"
# Scripts and styles only from Eventgate itself (no inline code), forms only to itself.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}"
)
# What a form's redirect reports (`?notice=` only ever selects one of these texts).
NOTICES = {
    "created": "Created.",
    "saved": "Saved.",
    "removed": "Removed: nothing is transformed any more.",
    "deleted": "Deleted.",
    "disabled": "Disabled: its deliveries wait until it is enabled again.",
    "enabled": "Enabled: waiting deliveries go out now.",
    "rotated": "Rotated: the previous secret also signs for 24 hours.",
    "test_sent": "A test event is on its way: its delivery appears below.",
    "recovered": "Dead deliveries are queued again.",
    "retried": "The delivery is due again now.",
    "source_created": "Created: point the provider at the trigger URL below, with its secret.",
    "bulk_retried": "Queued again (at most 1,000 at a time): the list below shows them "
    "waiting to go out.",
    "retried_circuit": "Queued again, but the endpoint's circuit is open: it goes out with the "
    "endpoint's next probe (see below), not now.",
    "retried_disabled": "Queued again, but the endpoint is disabled: it goes out once the "
    "endpoint is enabled.",
    "revoked": "Revoked: the key stops working at once.",
    "paused": "Paused: no tick fires until it is resumed.",
    "resumed": "Resumed from its next tick.",
    "ran": "Run now: its run is listed below.",
    "queued": "Queued: a worker serving the maintenance queue runs it.",
    "totp_on": "The second factor is on: signing in now also asks for a code.",
    "totp_off": "The second factor is off.",
    "session_ended": "That session has ended.",
    "password_changed": "Your password is changed.",
}
PAGE_HEADERS = {"cache-control": "no-store", "referrer-policy": "no-referrer"}

# The console's sections: (path, title, scope needed to see it).
SECTIONS = (
    ("/", "Overview", EVENTS_READ),
    ("/events", "Events", EVENTS_READ),
    ("/endpoints", "Endpoints", ENDPOINTS_MANAGE),
    ("/deliveries", "Deliveries", ENDPOINTS_MANAGE),
    ("/event-types", "Event types", EVENTS_READ),
    ("/sources", "Sources", SOURCES_MANAGE),
    ("/schedules", "Schedules", SCHEDULES_MANAGE),
    ("/keys", "Keys", KEYS_MANAGE),
    ("/audit", "Audit log", AUDIT_READ),
    ("/jobs", "Jobs", ADMIN),
    ("/users", "Users", ADMIN),
)


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _pretty(value: Any) -> str:
    return json.dumps(msgspec.to_builtins(value), indent=2, sort_keys=True, ensure_ascii=False)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        auto_reload=False,  # templates ship with the code: no stat per render, no drift
    )
    env.filters["when"] = _when
    env.filters["pretty"] = _pretty
    env.globals["now_utc"] = lambda: datetime.now(UTC)
    return env


TEMPLATES = TemplateConfig(instance=JinjaTemplateEngine.from_environment(_environment()))
STATIC_FILES = create_static_files_router(
    path=STATIC_PATH, directories=[HERE / "static"], include_in_schema=False, name="console_static"
)


def page_headers(ancestors: str = "'none'") -> dict[str, str]:
    """The headers of every page: framed only by `ancestors`."""
    return {**PAGE_HEADERS, "content-security-policy": CSP.format(ancestors=ancestors)}


def sections_for(session: ConsoleSession) -> list[tuple[str, str]]:
    """The sections this session's key may open."""
    if session.channel is not None:
        return [("/endpoints", "Endpoints"), ("/event-types", "Event types")]
    held = session.principal.scopes
    shown = [(path, title) for path, title, scope in SECTIONS if grants(held, scope, "GET")]
    if session.principal.user_id is not None:
        shown.append(("/account", "Account"))
    return shown


def render(
    session: ConsoleSession | None, name: str, *, status: int = 200, **context: Any
) -> Template:
    """A page of the console (or of a portal, when the session has a channel)."""
    ancestors = session.frame_ancestors if session is not None else "'none'"
    nav = sections_for(session) if session is not None else []
    return Template(
        template_name=name,
        context={
            "session": session,
            "nav": nav,
            "static": STATIC_PATH,
            "notices": NOTICES,
            **context,
        },
        status_code=status,
        headers=page_headers(ancestors),
    )


def go(path: str) -> Redirect:
    """After a form: see the result (303, so a reload does not post again)."""
    return Redirect(path, status_code=303, headers=PAGE_HEADERS)


def _session(request: Request) -> ConsoleSession | None:
    auth = request.scope.get("auth")
    return auth if isinstance(auth, ConsoleSession) else None


def error_page(request: Request, exc: EventgateError) -> Template:
    """A domain error as a page, with the same status (and headers) the API would answer."""
    page = render(_session(request), "error.html", status=exc.status_code, message=exc.message)
    page.headers.update(exc.headers)
    return page


def http_error_page(request: Request, exc: HTTPException) -> Template:
    """Litestar's own refusals (a bad query parameter, a wrong method) as pages."""
    status = exc.status_code if exc.status_code < 500 else 500
    message = exc.detail if status < 500 else "something went wrong on our side"
    return render(_session(request), "error.html", status=status, message=message)


def unstorable_page(request: Request, exc: psycopg.DataError) -> Template:
    """A value the database refused (NUL in a search field): the client's input."""
    return render(_session(request), "error.html", status=400, message=unstorable_message(exc))


def to_sign_in(request: Request, exc: NotSignedIn) -> Redirect:
    """No session: go and sign in."""
    return go(f"{CONSOLE_PATH}/sign-in")


EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    EventgateError: error_page,
    HTTPException: http_error_page,
    psycopg.DataError: unstorable_page,
    NotSignedIn: to_sign_in,
}
