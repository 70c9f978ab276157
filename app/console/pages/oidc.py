"""Pages /console/sign-in/oidc and its callback: single sign-on with the operator's OpenID
Connect provider (see app/console/oidc.py), ending in the same session a password opens."""

from __future__ import annotations

import hmac
import re
from typing import Annotated

from litestar import Controller, Request, get
from litestar.datastructures import Cookie
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from app.client_ip import client_ip
from app.console.oidc import Login, OidcClient
from app.console.pages.signin import SIGN_IN_PATH, open_signed_in, secure, sign_in_page
from app.console.rendering import EXCEPTION_HANDLERS, PAGE_HEADERS, render
from app.console.sessions import CONSOLE_PATH, cookie, new_token
from app.console.user_sign_in import admit_callback, vouched_user
from app.dependencies import AppSettings
from app.errors import EventgateError, NotFound, Unauthorized

OIDC_PATH = f"{SIGN_IN_PATH}/oidc"
LOGIN_COOKIE = "eventgate_oidc"  # the state, nonce and PKCE verifier of a sign-in under way
LOGIN_SECONDS = 600
ERROR_CODE = re.compile(r"[a-z_]{1,40}")  # a provider's error code, never its free text
ProviderText = Annotated[str, QueryParameter(max_length=2048)]
# `state` is a name Litestar keeps for the app's state.
ProviderState = Annotated[str, QueryParameter(name="state", max_length=2048)]


class OidcSignInController(Controller):
    """Leaving for the provider, and coming back with a code."""

    path = OIDC_PATH
    include_in_schema = False
    exception_handlers = EXCEPTION_HANDLERS

    @get("/", name="console_oidc_sign_in")
    async def leave(self, request: Request, settings: AppSettings) -> Redirect | Template:
        login = Login(new_token(), new_token(), new_token())
        try:
            target = await _client(request).authorization_url(login, _redirect_uri(request))
        except EventgateError as failed:
            return sign_in_page(request, settings, refused=failed)
        redirect = Redirect(target, status_code=303, headers=PAGE_HEADERS)
        redirect.cookies.append(_login_cookie(request, login.cookie_value(), LOGIN_SECONDS))
        return redirect

    @get("/callback", name="console_oidc_callback")
    async def come_back(
        self,
        request: Request,
        settings: AppSettings,
        code: ProviderText = "",
        login_state: ProviderState = "",
        error: ProviderText = "",
    ) -> Template:
        try:
            page = await _signed_in(request, settings, code, login_state, error)
        except EventgateError as refused:
            page = sign_in_page(request, settings, refused=refused)
        page.cookies.append(_login_cookie(request, "", 0))  # a login is tried once
        return page


async def _signed_in(
    request: Request, settings: AppSettings, code: str, state: str, error: str
) -> Template:
    """Check the provider's answer against this browser's login and open a session."""
    login = Login.from_cookie(request.cookies.get(LOGIN_COOKIE, ""))
    if login is None or not hmac.compare_digest(login.state.encode(), state.encode()):
        raise Unauthorized("that sign-in link was not started here, or has expired; try again")
    if error:
        why = error if ERROR_CODE.fullmatch(error) else "refused"
        raise Unauthorized(f"the sign-in provider did not sign you in ({why})")
    client = client_ip(request.scope, settings.trusted_proxies)
    await admit_callback(request.app.state.rate_limiter, settings, client)
    identity = await _client(request).identity(code, login, _redirect_uri(request))
    principal = await vouched_user(request.app.state.pool, identity.email, identity.email_verified)
    opened = await open_signed_in(request, principal)
    # A page, not a redirect: the session cookie is SameSite=Strict, and a browser arriving
    # from the provider's site would not send it on a redirect that continues that navigation.
    page = render(None, "signed_in.html", target=f"{CONSOLE_PATH}/")
    page.cookies.extend(opened.cookies)
    return page


def _client(request: Request) -> OidcClient:
    """The provider's client; 404 when single sign-on is not configured."""
    client: OidcClient | None = request.app.state.oidc
    if client is None:
        raise NotFound("single sign-on is not configured here")
    return client


def _redirect_uri(request: Request) -> str:
    """Where the provider sends the browser back: this console's callback."""
    return f"{str(request.base_url).rstrip('/')}{OIDC_PATH}/callback"


def _login_cookie(request: Request, value: str, max_age: int) -> Cookie:
    """The cookie holding a login under way (lax: the provider's redirect back must carry it)."""
    return cookie(
        LOGIN_COOKIE,
        value,
        path=OIDC_PATH,
        max_age=max_age,
        secure=secure(request),
        samesite="lax",
    )
