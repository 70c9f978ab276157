"""Authentication middleware: X-API-Key or Authorization: Bearer, verified by the KeyVerifier."""

from __future__ import annotations

import asyncio

from litestar.connection import ASGIConnection
from litestar.middleware import (
    AbstractAuthenticationMiddleware,
    AuthenticationResult,
    DefineMiddleware,
)

from app.errors import Unauthorized
from app.keys.verifier import KeyVerifier


def presented_key(connection: ASGIConnection) -> str | None:
    """The key the client sent, from X-API-Key or a Bearer token."""
    if key := connection.headers.get("x-api-key"):
        return key.strip()
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


class ApiKeyAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    """Sets request.user to the verified Principal; 401 for a missing or bad key."""

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        key = presented_key(connection)
        if key is None:
            raise Unauthorized("an API key is required (X-API-Key or Authorization: Bearer)")
        verifier: KeyVerifier = connection.app.state.key_verifier
        try:
            principal = await verifier.verify(key)
        except Unauthorized:
            # A refused key is answered late: a guesser's connections each try a couple of
            # keys a second instead of thousands, which keeps a flood from crowding out valid
            # requests (the wait is a sleep, not work).
            await asyncio.sleep(connection.app.state.settings.auth_failure_delay_seconds)
            raise
        return AuthenticationResult(user=principal, auth=key)


# Declared on the authenticated controllers, not the app, so unknown routes stay 404. OPTIONS
# (Litestar's own answer: 204 with Allow) carries no data and needs no key; HEAD does.
api_key_auth = DefineMiddleware(ApiKeyAuthenticationMiddleware, exclude_http_methods=["OPTIONS"])
