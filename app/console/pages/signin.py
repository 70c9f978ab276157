"""Pages /console/sign-in and /console/sign-out: a person's email, password and code (or,
when allowed, an API key) in, a session cookie out."""

from __future__ import annotations

from litestar import Controller, Request, get, post
from litestar.response import Redirect, Template

from app.auth import answer_refusal
from app.client_ip import client_ip
from app.console.base import CheckedForm
from app.console.forms import Form, checked_form
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
from app.console.user_sign_in import DEVICE_DAYS, Attempt, sign_in
from app.dependencies import AppSettings, Transaction, Verifier
from app.errors import EventgateError, Forbidden, Unauthorized
from app.keys.verifier import Principal

SIGN_IN_SECONDS = 3600
SIGN_IN_PATH = f"{CONSOLE_PATH}/sign-in"
DEVICE_COOKIE = "eventgate_device"  # a browser that signed in before (see user_sign_in)


def secure(request: Request) -> bool:
    """Whether cookies must be Secure (the request came over https)."""
    return request.scope.get("scheme") == "https"


class SignInController(Controller):
    """The sign-in form (its CSRF token a double-submit cookie) and opening a session."""

    path = SIGN_IN_PATH
    include_in_schema = False
    exception_handlers = EXCEPTION_HANDLERS

    @get("/", name="console_sign_in")
    async def sign_in_form(self, request: Request, settings: AppSettings) -> Template:
        return sign_in_page(request, settings)

    # The pool, not a transaction: no connection is held while a password or key is
    # verified (argon2) or a refusal waits out its delay; only storing the session takes one.
    @post("/", name="console_sign_in_submit")
    async def sign_in(
        self, request: Request, key_verifier: Verifier, settings: AppSettings
    ) -> Redirect | Template:
        form_token = request.cookies.get(SIGN_IN_COOKIE, "")
        form = await checked_form(request, form_token)
        client = client_ip(request.scope, settings.trusted_proxies)
        if "key" in form:
            return await _with_key(request, form, form_token, key_verifier, client, settings)
        return await _as_user(request, form, form_token, client, settings)


async def _as_user(
    request: Request, form: Form, form_token: str, client: str, settings: AppSettings
) -> Redirect | Template:
    """A person signs in; the browser keeps a device cookie (see user_sign_in)."""
    attempt = Attempt(
        email=form.get("email", ""),
        password=form.get("password", ""),
        code=form.get("code", ""),
        device=request.cookies.get(DEVICE_COOKIE, ""),
        client=client,
    )
    state = request.app.state
    try:
        signed_in = await sign_in(state.pool, state.rate_limiter, settings, attempt)
    except EventgateError as refused:
        return _form_again(request, form, form_token, refused, settings)
    redirect = await open_signed_in(request, signed_in.principal)
    age = DEVICE_DAYS * 86400
    redirect.cookies.append(
        cookie(
            DEVICE_COOKIE, signed_in.device, path=SIGN_IN_PATH, max_age=age, secure=secure(request)
        )
    )
    return redirect


async def _with_key(
    request: Request,
    form: Form,
    form_token: str,
    verifier: Verifier,
    client: str,
    settings: AppSettings,
) -> Redirect | Template:
    """An API key signs in (automation), when the setting allows it."""
    if not settings.console_key_sign_in:
        refused = Forbidden("signing in with an API key is turned off here; use your email")
        return _form_again(request, form, form_token, refused, settings)
    key = form.get("key", "").strip()
    try:
        principal = await verifier.verify(key, client)
    except Unauthorized as refused:
        answer = await answer_refusal(request, key or None, refused)
        assert isinstance(answer, EventgateError)
        return _form_again(request, form, form_token, answer, settings)
    return await open_signed_in(request, principal)


async def open_signed_in(request: Request, principal: Principal) -> Redirect:
    """Open a session for the principal and go to the console with its cookie."""
    state = request.app.state
    token, lifetime = await open_session(state.pool, principal, state.settings, request.scope)
    redirect = go(f"{CONSOLE_PATH}/")
    redirect.cookies.append(
        cookie(SESSION_COOKIE, token, path=CONSOLE_PATH, max_age=lifetime, secure=secure(request))
    )
    return redirect


def _form_again(
    request: Request, form: Form, form_token: str, refused: EventgateError, settings: AppSettings
) -> Template:
    """The form again with what was typed (never the password) and why it was refused: 401,
    403, or 429 past the limits on guessing."""
    email = form.get("email", "")[:254]
    return sign_in_page(request, settings, refused=refused, email=email, form_token=form_token)


def sign_in_page(
    request: Request,
    settings: AppSettings,
    *,
    refused: EventgateError | None = None,
    email: str = "",
    form_token: str | None = None,
) -> Template:
    """The sign-in page, with why the last try was refused; a new form token (CSRF) unless
    the form being answered brought one."""
    token = form_token or new_token()
    page = render(
        None,
        "sign_in.html",
        status=refused.status_code if refused else 200,
        error=refused.message if refused else None,
        csrf_token=token,
        email=email,
        keys=settings.console_key_sign_in,
        single_sign_on=settings.oidc_name if settings.oidc_issuer else None,
    )
    if refused is not None:
        page.headers.update(refused.headers)
    if form_token is None:
        age = SIGN_IN_SECONDS
        page.cookies.append(
            cookie(SIGN_IN_COOKIE, token, path=SIGN_IN_PATH, max_age=age, secure=secure(request))
        )
    return page


class SignOutPages(Controller):
    """Ending the session: the row goes, the cookie is cleared."""

    path = "/sign-out"
    opt = {"scope": None}  # noqa: RUF012 - anyone signed in may sign out

    @post("/", name="console_sign_out")
    async def sign_out(self, request: Request, form: CheckedForm, conn: Transaction) -> Redirect:
        await close_session(conn, request.auth, request.cookies.get(SESSION_COOKIE, ""))
        redirect = go(SIGN_IN_PATH)
        redirect.cookies.append(
            cookie(SESSION_COOKIE, "", path=CONSOLE_PATH, max_age=0, secure=secure(request))
        )
        return redirect
