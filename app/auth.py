"""Authentication of API requests: X-API-Key or Authorization: Bearer, verified by the KeyVerifier.

Requests without a valid key are counted per client address (and wrong secrets per address
and key prefix): past those limits they get a 429 instead of a 401. The right secret is never
refused by these limits: it is verified first, and a guesser elsewhere counts only against
its own address.
"""

from __future__ import annotations

import asyncio

from litestar.connection import ASGIConnection
from litestar.types import Scope

from app.audit import acting_in, record_refusal
from app.client_ip import client_ip
from app.errors import Unauthorized
from app.keys import secrets
from app.keys.verifier import KeyRefused, KeyVerifier, Principal
from app.rate_limits.limiter import RateLimiter


def presented_key(scope: Scope) -> str | None:
    """The key the client sent, from X-API-Key or a Bearer token."""
    authorization = ""
    for name, value in scope["headers"]:
        if name == b"x-api-key" and (key := value.decode("latin-1").strip()):
            return key
        if name == b"authorization" and not authorization:
            authorization = value.decode("latin-1")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def authenticate(scope: Scope) -> Principal:
    """The verified principal of the request's key, also set as request.user; 401 for a
    missing or bad key (429 past the guessing limits)."""
    key = presented_key(scope)
    state = scope["app"].state
    verifier: KeyVerifier = state.key_verifier
    try:
        if key is None:
            raise Unauthorized("an API key is required (X-API-Key or Authorization: Bearer)")
        principal = await verifier.verify(key, client_ip(scope, state.settings.trusted_proxies))
    except Unauthorized as refused:
        raise await answer_refusal(ASGIConnection(scope), key, refused) from None
    scope["user"] = principal
    scope["auth"] = key
    acting_in(scope)  # the author of whatever this request changes
    return principal


async def answer_refusal(
    connection: ASGIConnection, key: str | None, refused: Unauthorized
) -> Exception:
    """Count a request without a valid key; the error to answer: 401, or 429 past the
    limits."""
    state = connection.app.state
    settings = state.settings
    if key is not None:
        # A refused key is answered late: a guesser's connections each try a couple of keys
        # a second instead of thousands, so a flood cannot crowd out valid requests (the
        # wait is a sleep, not work).
        await asyncio.sleep(settings.auth_failure_delay_seconds)
    if not settings.rate_limits_enabled:
        return refused
    limiter: RateLimiter = state.rate_limiter
    prefix = secrets.prefix_of(key) if key else None
    decision = await limiter.admit_anonymous(
        client_ip(connection.scope, settings.trusted_proxies), prefix
    )
    if not decision.taken.allowed:
        return decision.refuse("this address (or its guesses at this key) without a valid key")
    if isinstance(refused, KeyRefused) and await limiter.may_record_refusal(refused.key_id):
        # Bounded per key, from all addresses together: a flood past it writes nothing.
        await record_refusal(state.pool, connection.scope, refused)
    refused.headers.update(decision.headers())
    return refused
