"""Portal links: created by a key with endpoints:manage, each one channel of its tenant; the
URL holds a random token of which only the sha256 is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from litestar.connection import ASGIConnection
from litestar.middleware import (
    AbstractAuthenticationMiddleware,
    AuthenticationResult,
    DefineMiddleware,
)
from psycopg import AsyncConnection

from app.audit import acting_in, record
from app.console.sessions import ConsoleSession, digest, new_token
from app.errors import NotFound
from app.keys.verifier import Principal
from app.portal.schemas import PortalLink, PortalLinkIn
from app.scopes import ENDPOINTS_MANAGE
from db import portal_links
from db.ids import new_id

PORTAL_PATH = "/portal"
# What a portal may do: exactly what endpoints:manage allows, within its channel.
PORTAL_SCOPES = frozenset({ENDPOINTS_MANAGE})


async def create(
    conn: AsyncConnection, caller: Principal, data: PortalLinkIn, base_url: str
) -> PortalLink:
    """Store a new link; the answer is the only place its token appears."""
    token = new_token()
    new = portal_links.NewLink(
        id=new_id(),
        tenant_id=caller.tenant_id,
        channel=data.channel,
        allowed_origin=data.allowed_origin,
        token_hash=digest(token),
        csrf_token=new_token(),
        created_by=caller.key_id,
        expires_at=datetime.now(UTC) + timedelta(seconds=data.expires_in_seconds),
    )
    await portal_links.insert(conn, new)
    link = PortalLink(
        new.id, f"{base_url}{PORTAL_PATH}/{token}/", new.channel, new.allowed_origin, new.expires_at
    )
    kept = {"channel": link.channel, "allowed_origin": link.allowed_origin}
    await record(conn, caller.tenant_id, "portal_link.create", "portal_link", new.id, after=kept)
    return link


def _session_of(link: portal_links.Link, token: str) -> ConsoleSession:
    principal = Principal(
        key_id=link.id,
        tenant_id=link.tenant_id,
        prefix=f"portal:{link.channel}",
        scopes=PORTAL_SCOPES,
        expires_at=link.expires_at,
    )
    return ConsoleSession(
        principal,
        link.csrf_token,
        base=f"{PORTAL_PATH}/{token}",
        channel=link.channel,
        frame_ancestors=link.allowed_origin,
    )


class PortalLinkMiddleware(AbstractAuthenticationMiddleware):
    """request.auth: the portal's session, from the token in the path; NotFound when the
    link is unknown or expired."""

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        token = str(connection.scope.get("path_params", {}).get("token", ""))
        if not token or len(token) > 100:
            raise NotFound("this portal link is not valid or has expired")
        async with connection.app.state.pool.connection() as conn:
            link = await portal_links.get_live(conn, digest(token))
        if link is None:
            raise NotFound("this portal link is not valid or has expired")
        session = _session_of(link, token)
        connection.scope["user"] = session.principal
        acting_in(connection.scope)
        return AuthenticationResult(user=session.principal, auth=session)


portal_session = DefineMiddleware(PortalLinkMiddleware)
