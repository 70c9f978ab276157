"""Console sign-in: an API key exchanged for a session cookie (only its sha256 is stored), and
the middleware that turns the cookie back into the key's principal on every page."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.middleware import (
    AbstractAuthenticationMiddleware,
    AuthenticationResult,
    DefineMiddleware,
)
from litestar.types import Scope
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from app.audit import acting_in, record
from app.client_ip import client_ip
from app.keys.verifier import Principal
from app.scopes import ROLE_SCOPES
from core.settings import Settings
from db import console_sessions
from db.ids import new_id

SESSION_COOKIE = "eventgate_session"
SIGN_IN_COOKIE = "eventgate_sign_in"  # the sign-in form's CSRF token (double submit)
CONSOLE_PATH = "/console"


class NotSignedIn(Exception):
    """No live session: the browser is sent to the sign-in page."""


class ConsoleSession(msgspec.Struct, frozen=True):
    """A signed-in console: who acts, and the CSRF token its forms carry."""

    principal: Principal
    csrf_token: str
    base: str = CONSOLE_PATH
    channel: str | None = None  # a portal's: only this channel's endpoints
    frame_ancestors: str = "'none'"  # a portal's allowed origin may frame it
    session_id: uuid.UUID | None = None


def new_token() -> str:
    """A fresh unguessable token (256 bits)."""
    return secrets.token_urlsafe(32)


def digest(token: str) -> bytes:
    """What is stored of a token: its sha256."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def cookie(
    name: str,
    value: str,
    *,
    path: str,
    max_age: int,
    secure: bool,
    samesite: Literal["strict", "lax"] = "strict",
) -> Cookie:
    """A cookie scripts cannot read and other sites never send (lax: sent on a top-level
    navigation from another site, as a provider's redirect back to the console is)."""
    return Cookie(
        key=name,
        value=value,
        path=path,
        max_age=max_age,
        httponly=True,
        samesite=samesite,
        secure=secure,
    )


async def open_session(
    pool: AsyncConnectionPool, principal: Principal, settings: Settings, scope: Scope
) -> tuple[str, int]:
    """Store a new session for this user or key, in a transaction of its own; its cookie
    value and lifetime in seconds."""
    token = new_token()
    lifetime = int(settings.console_session_seconds)
    expires_at = datetime.now(UTC) + timedelta(seconds=lifetime)
    if principal.expires_at is not None:
        expires_at = min(expires_at, principal.expires_at)
    agent = dict(scope["headers"]).get(b"user-agent", b"").decode("latin-1")[:300] or None
    new = console_sessions.NewSession(
        token_hash=digest(token),
        tenant_id=principal.tenant_id,
        id=new_id(),
        key_id=principal.key_id,
        user_id=principal.user_id,
        csrf_token=new_token(),
        expires_at=expires_at,
        client_ip=client_ip(scope, settings.trusted_proxies),
        user_agent=agent,
    )
    scope["user"] = principal
    acting_in(scope)  # the sign-in is audited as this person's or key's
    kind, actor = actor_of(principal)
    async with pool.connection() as conn, conn.transaction():
        await console_sessions.insert(conn, new)
        await record(conn, principal.tenant_id, "console.signed_in", kind, actor)
    return token, lifetime


def actor_of(principal: Principal) -> tuple[str, uuid.UUID]:
    """The resource a session's audit entries name: its user, or its key."""
    if principal.user_id is not None:
        return "console_user", principal.user_id
    assert principal.key_id is not None
    return "api_key", principal.key_id


async def close_session(conn: AsyncConnection, session: ConsoleSession, token: str) -> None:
    """Sign out: the cookie stops working at once."""
    tenant_id = session.principal.tenant_id
    await console_sessions.delete(conn, tenant_id, digest(token))
    await record(conn, tenant_id, "console.signed_out", *actor_of(session.principal))


def user_principal(
    tenant_id: uuid.UUID, user_id: uuid.UUID, email: str | None, role: str
) -> Principal:
    """What a signed-in person may do: their role's scopes."""
    return Principal(
        key_id=None,
        tenant_id=tenant_id,
        prefix=None,
        scopes=ROLE_SCOPES[role],
        expires_at=None,
        user_id=user_id,
        email=email,
    )


def _session_of(live: console_sessions.LiveSession) -> ConsoleSession:
    if live.user_id is not None:
        assert live.role is not None
        principal = user_principal(live.tenant_id, live.user_id, live.email, live.role)
    else:
        principal = Principal(
            key_id=live.key_id,
            tenant_id=live.tenant_id,
            prefix=live.prefix,
            scopes=frozenset(live.scopes or ()),
            expires_at=live.key_expires_at,
            tier=live.rate_limit_tier or "standard",
        )
    return ConsoleSession(principal, live.csrf_token, session_id=live.id)


class ConsoleSessionMiddleware(AbstractAuthenticationMiddleware):
    """request.user: the session key's principal; request.auth: the ConsoleSession."""

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        token = connection.cookies.get(SESSION_COOKIE)
        if not token or len(token) > 100:
            raise NotSignedIn
        async with connection.app.state.pool.connection() as conn:
            live = await console_sessions.get_live(conn, digest(token))
        if live is None:
            raise NotSignedIn
        session = _session_of(live)
        connection.scope["user"] = session.principal
        acting_in(connection.scope)
        return AuthenticationResult(user=session.principal, auth=session)


console_session = DefineMiddleware(ConsoleSessionMiddleware)
