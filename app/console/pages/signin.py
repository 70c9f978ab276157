"""Pages /console/sign-in and /console/sign-out: an API key in, a session cookie out."""

from __future__ import annotations

from litestar import Controller, Request, get, post
from litestar.response import Redirect, Template

from app.audit import acting_in
from app.auth import answer_refusal
from app.client_ip import client_ip
from app.console.base import CheckedForm
from app.console.forms import checked_form
from app.console.rendering import EXCEPTION_HANDLERS, go, render
from app.console.sessions import (
    CONSOLE_PATH,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    close_session,
    cookie,
    new_token,
    open_session,
)
from app.dependencies import AppSettings, Pool, Transaction, Verifier
from app.errors import EventgateError, Unauthorized

SIGN_IN_SECONDS = 3600


def _secure(request: Request) -> bool:
    return request.scope.get("scheme") == "https"


class SignInController(Controller):
    """The sign-in form (its CSRF token a double-submit cookie) and opening a session."""

    path = f"{CONSOLE_PATH}/sign-in"
    include_in_schema = False
    exception_handlers = EXCEPTION_HANDLERS

    @get("/", name="console_sign_in")
    async def sign_in_form(self, request: Request) -> Template:
        token = new_token()
        page = render(None, "sign_in.html", csrf_token=token)
        path, secure = f"{CONSOLE_PATH}/sign-in", _secure(request)
        page.cookies.append(
            cookie(SIGN_IN_COOKIE, token, path=path, max_age=SIGN_IN_SECONDS, secure=secure)
        )
        return page

    # The pool, not a transaction: no connection is held while the key is verified (argon2)
    # or a refusal waits out its delay; only storing the session takes one.
    @post("/", name="console_sign_in_submit")
    async def sign_in(
        self, request: Request, pool: Pool, key_verifier: Verifier, settings: AppSettings
    ) -> Redirect | Template:
        form_token = request.cookies.get(SIGN_IN_COOKIE, "")
        key = (await checked_form(request, form_token)).get("key", "").strip()
        try:
            client = client_ip(request.scope, settings.trusted_proxies)
            principal = await key_verifier.verify(key, client)
        except Unauthorized as refused:
            return await _refused(request, key, refused, form_token)
        request.scope["user"] = principal
        acting_in(request.scope)  # the sign-in is audited as this key's
        token, lifetime = await open_session(pool, principal, settings)
        redirect = go(f"{CONSOLE_PATH}/")
        secure = _secure(request)
        redirect.cookies.append(
            cookie(SESSION_COOKIE, token, path=CONSOLE_PATH, max_age=lifetime, secure=secure)
        )
        return redirect


async def _refused(request: Request, key: str, refused: Unauthorized, form_token: str) -> Template:
    """The form again, with the API's answer to that key: 401, or 429 past the limits on
    guessing (the same counters as for API requests)."""
    answer = await answer_refusal(request, key or None, refused)
    assert isinstance(answer, EventgateError)
    page = render(
        None, "sign_in.html", status=answer.status_code, error=answer.message, csrf_token=form_token
    )
    page.headers.update(answer.headers)
    return page


class SignOutPages(Controller):
    """Ending the session: the row goes, the cookie is cleared."""

    path = "/sign-out"
    opt = {"scope": None}  # noqa: RUF012 - any signed-in key may sign out

    @post("/", name="console_sign_out")
    async def sign_out(self, request: Request, form: CheckedForm, conn: Transaction) -> Redirect:
        await close_session(conn, request.auth, request.cookies.get(SESSION_COOKIE, ""))
        redirect = go(f"{CONSOLE_PATH}/sign-in")
        redirect.cookies.append(
            cookie(SESSION_COOKIE, "", path=CONSOLE_PATH, max_age=0, secure=_secure(request))
        )
        return redirect
