"""OAuth2 client credentials for HTTP destinations: one token per endpoint and config, fetched
once however many deliveries wait for it, and reused until shortly before it expires."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
import uuid
from collections.abc import Callable
from ssl import SSLContext
from urllib.parse import quote_plus

import aiohttp
import msgspec

from core.destination_configs import OAuth2ClientCredentials

# A token is renewed this long before the expiry its server announced (clock skew, the
# request's own time on the wire), and kept this long when no expiry is announced.
EXPIRY_MARGIN_SECONDS = 30.0
UNANNOUNCED_LIFETIME_SECONDS = 300.0
MAX_TOKEN_ANSWER_BYTES = 65_536
# Tokens of at most this many endpoint configs are kept (the oldest go first).
MAX_TOKENS = 10_000


class TokenRefused(Exception):
    """The token endpoint gave no token; the message is the attempt's error."""


class TokenAnswer(msgspec.Struct):
    """The parts of a token endpoint's answer that matter (RFC 6749 §5.1)."""

    access_token: str
    token_type: str = "Bearer"
    expires_in: float | None = None


class TokenCache:
    """Tokens by endpoint and config; a changed config (a new secret) gets a new token."""

    def __init__(self, session: aiohttp.ClientSession, check_url: Callable[[str], None]) -> None:
        self._session = session
        self._check_url = check_url
        self._tokens: dict[tuple[uuid.UUID, str], tuple[str, float]] = {}
        self._locks: dict[tuple[uuid.UUID, str], asyncio.Lock] = {}

    async def token(
        self, endpoint_id: uuid.UUID, auth: OAuth2ClientCredentials, ssl: SSLContext | bool
    ) -> str:
        """A valid access token, from the cache or the token endpoint (TokenRefused)."""
        key = (endpoint_id, _fingerprint(auth))
        cached = self._fresh(key)
        if cached is not None:
            return cached
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:  # the deliveries waiting meanwhile take the token this one gets
                cached = self._fresh(key)
                if cached is not None:
                    return cached
                token, lifetime = await self._request(auth, ssl)
                if len(self._tokens) >= MAX_TOKENS:
                    del self._tokens[next(iter(self._tokens))]
                self._tokens[key] = (token, time.monotonic() + lifetime)
                return token
        finally:
            if not lock.locked():
                self._locks.pop(key, None)

    def forget(self, endpoint_id: uuid.UUID, auth: OAuth2ClientCredentials) -> None:
        """Drop a token the receiver refused (401), so the next try gets a new one."""
        self._tokens.pop((endpoint_id, _fingerprint(auth)), None)

    def _fresh(self, key: tuple[uuid.UUID, str]) -> str | None:
        found = self._tokens.get(key)
        if found is None or found[1] <= time.monotonic():
            return None
        return found[0]

    async def _request(
        self, auth: OAuth2ClientCredentials, ssl: SSLContext | bool
    ) -> tuple[str, float]:
        form = {"grant_type": "client_credentials"}
        if auth.scope:
            form["scope"] = auth.scope
        if auth.audience:
            form["audience"] = auth.audience
        headers = {"accept": "application/json"}
        if auth.client_authentication == "basic":
            # RFC 6749 §2.3.1: each part form-encoded, then HTTP Basic.
            basic = base64.b64encode(
                f"{quote_plus(auth.client_id)}:{quote_plus(auth.client_secret)}".encode()
            )
            headers["authorization"] = f"Basic {basic.decode()}"
        else:
            form |= {"client_id": auth.client_id, "client_secret": auth.client_secret}
        try:
            self._check_url(auth.token_url)
            async with self._session.post(
                auth.token_url, data=form, headers=headers, allow_redirects=False, ssl=ssl
            ) as response:
                raw = await response.content.read(MAX_TOKEN_ANSWER_BYTES)
                status = response.status
        except Exception as exc:  # unreachable, refused, timed out: the try fails
            raise TokenRefused(
                f"OAuth2 token request failed: {type(exc).__name__}: {exc}"
            ) from None
        return _token_from(status, raw)


def _token_from(status: int, raw: bytes) -> tuple[str, float]:
    if status != 200:
        excerpt = raw[:200].decode("utf-8", "replace")
        raise TokenRefused(f"OAuth2 token request answered HTTP {status}: {excerpt}")
    try:
        answer = msgspec.json.decode(raw, type=TokenAnswer)
    except msgspec.DecodeError as exc:
        raise TokenRefused(f"OAuth2 token answer unusable: {exc}") from None
    if answer.token_type.lower() != "bearer" or not answer.access_token.isprintable():
        raise TokenRefused("OAuth2 token answer is not a usable bearer token")
    lifetime = answer.expires_in or UNANNOUNCED_LIFETIME_SECONDS
    return answer.access_token, max(lifetime - EXPIRY_MARGIN_SECONDS, lifetime / 2)


def _fingerprint(auth: OAuth2ClientCredentials) -> str:
    return hashlib.sha256(msgspec.json.encode(auth)).hexdigest()
