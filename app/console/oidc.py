"""Signing in to the console with OpenID Connect: the authorization code flow with PKCE
against the operator's provider (EVENTGATE_OIDC_*), its ID token checked by joserfc.

Only the configured issuer is ever fetched: its discovery document, its keys, its token and
userinfo endpoints. What the browser brings back (code, state) is compared or forwarded to
those, never used as an address.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from typing import TypeVar
from urllib.parse import urlencode

import aiohttp
import msgspec
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from app.errors import EventgateError, Unauthorized
from core.settings import Settings

METADATA_SECONDS = 3600.0  # how long the discovery document and keys are reused
KEYS_REFRESH_SECONDS = 60.0  # an unknown key id refetches the keys at most this often
# After the provider failed to answer, sign-ins are refused without asking it again for this
# long: a flood of sign-in clicks while it is down is not a flood of requests to it.
FAILURE_PAUSE_SECONDS = 5.0
MAX_DOCUMENT_BYTES = 1 << 20
TIMEOUT = aiohttp.ClientTimeout(total=10)
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
MAX_CODE_LENGTH = 2048
T = TypeVar("T")


class ProviderUnavailable(EventgateError):
    """The provider did not answer, or answered something unusable."""

    status_code, code = 502, "sign_in_provider_unavailable"

    def __init__(self, why: str) -> None:
        super().__init__(f"the sign-in provider could not be reached ({why}); try again")


class ProviderMetadata(msgspec.Struct, frozen=True):
    """The parts of the provider's discovery document the flow uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None


class Login(msgspec.Struct, frozen=True):
    """What the browser carries (in a cookie) from leaving for the provider to coming back."""

    state: str
    nonce: str
    verifier: str

    def cookie_value(self) -> str:
        """The three tokens in one cookie (URL-safe base64 never contains a dot)."""
        return f"{self.state}.{self.nonce}.{self.verifier}"

    @classmethod
    def from_cookie(cls, value: str) -> Login | None:
        """The login a cookie holds, or None when it holds something else."""
        parts = value.split(".")
        if len(parts) != 3 or not all(0 < len(part) <= 100 for part in parts):
            return None
        return cls(*parts)


class Identity(msgspec.Struct, frozen=True):
    """Who the provider says signed in."""

    subject: str
    email: str
    email_verified: bool


class TokenAnswer(msgspec.Struct, frozen=True):
    """The token endpoint's answer."""

    id_token: str
    access_token: str | None = None


class UserInfo(msgspec.Struct, frozen=True):
    """The userinfo endpoint's answer."""

    sub: str
    email: str | None = None
    email_verified: bool | str | None = None


def code_challenge(verifier: str) -> str:
    """PKCE's S256 challenge of a verifier."""
    hashed = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(hashed).rstrip(b"=").decode("ascii")


class OidcClient:
    """One process's client of the configured provider (metadata and keys cached)."""

    def __init__(self, settings: Settings) -> None:
        assert settings.oidc_issuer
        assert settings.oidc_client_id
        self.issuer = settings.oidc_issuer.rstrip("/")
        self.client_id = settings.oidc_client_id
        self.client_secret = settings.oidc_client_secret or ""
        self._metadata: ProviderMetadata | None = None
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._failed_at = -FAILURE_PAUSE_SECONDS
        self._loading = asyncio.Lock()  # one discovery at a time; the others wait for it

    async def authorization_url(self, login: Login, redirect_uri: str) -> str:
        """Where the browser goes to sign in at the provider."""
        metadata = await self._provider()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "scope": "openid email",
                "state": login.state,
                "nonce": login.nonce,
                "code_challenge": code_challenge(login.verifier),
                "code_challenge_method": "S256",
            }
        )
        separator = "&" if "?" in metadata.authorization_endpoint else "?"
        return f"{metadata.authorization_endpoint}{separator}{query}"

    async def identity(self, code: str, login: Login, redirect_uri: str) -> Identity:
        """Exchange the code and check the ID token; Unauthorized when anything is off."""
        if not 0 < len(code) <= MAX_CODE_LENGTH or not code.isascii() or not code.isprintable():
            raise Unauthorized("the sign-in provider's answer was not valid; sign in again")
        metadata = await self._provider()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": login.verifier,
        }
        auth = aiohttp.BasicAuth(self.client_id, self.client_secret)
        answer = await self._fetch(metadata.token_endpoint, TokenAnswer, data=form, auth=auth)
        claims = await self._id_token_claims(answer.id_token, login.nonce)
        subject = str(claims["sub"])
        email, verified = claims.get("email"), claims.get("email_verified")
        if email is None and answer.access_token and metadata.userinfo_endpoint:
            email, verified = await self._userinfo(metadata, answer.access_token, subject)
        if not isinstance(email, str) or not email:
            raise Unauthorized("the sign-in provider did not share your email address")
        return Identity(subject, email, verified is True or verified == "true")

    async def _userinfo(
        self, metadata: ProviderMetadata, access_token: str, subject: str
    ) -> tuple[str | None, object]:
        """The email the userinfo endpoint gives for the ID token's subject."""
        assert metadata.userinfo_endpoint
        headers = {"Authorization": f"Bearer {access_token}"}
        info = await self._fetch(metadata.userinfo_endpoint, UserInfo, headers=headers)
        if not hmac.compare_digest(info.sub, subject):
            raise Unauthorized("the sign-in provider's answers disagree; sign in again")
        return info.email, info.email_verified

    async def _id_token_claims(self, id_token: str, nonce: str) -> dict[str, object]:
        """The ID token's claims, its signature, issuer, audience, expiry and nonce checked."""
        try:
            token = jwt.decode(id_token, await self._key_set(id_token), algorithms=ALGORITHMS)
            registry = jwt.JWTClaimsRegistry(
                leeway=60,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.client_id},
                sub={"essential": True},
                exp={"essential": True},
                nonce={"essential": True, "value": nonce},
            )
            registry.validate(token.claims)
        except (JoseError, ValueError) as refused:
            raise Unauthorized("the sign-in provider's token was not valid; sign in again") from (
                refused
            )
        return dict(token.claims)

    async def _key_set(self, id_token: str) -> KeySet:
        """The provider's keys; fetched again (rate-bounded) for a key id not seen yet."""
        await self._provider()
        assert self._keys is not None
        assert self._metadata is not None
        kid = _key_id(id_token)
        if kid is not None and kid not in {key.kid for key in self._keys.keys}:
            async with self._loading:
                if time.monotonic() - self._fetched_at > KEYS_REFRESH_SECONDS:
                    await self._load(self._metadata)
        return self._keys

    async def _provider(self) -> ProviderMetadata:
        """The discovery document, fetched once an hour by one request at a time."""
        async with self._loading:
            fresh = time.monotonic() - self._fetched_at < METADATA_SECONDS
            if self._metadata is None or not fresh:
                if time.monotonic() - self._failed_at < FAILURE_PAUSE_SECONDS:
                    raise ProviderUnavailable("it failed to answer a moment ago")
                try:
                    await self._discover()
                except ProviderUnavailable:
                    self._failed_at = time.monotonic()
                    raise
        assert self._metadata is not None
        return self._metadata

    async def _discover(self) -> None:
        """Fetch the discovery document and the keys it names."""
        url = f"{self.issuer}/.well-known/openid-configuration"
        metadata = await self._fetch(url, ProviderMetadata)
        if metadata.issuer.rstrip("/") != self.issuer:
            raise ProviderUnavailable("its discovery document names another issuer")
        await self._load(metadata)

    async def _load(self, metadata: ProviderMetadata) -> None:
        """Fetch the provider's keys and keep them with its metadata."""
        document = await self._fetch(metadata.jwks_uri, dict[str, object])
        try:
            keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as unusable:
            raise ProviderUnavailable("its keys could not be read") from unusable
        self._metadata, self._keys, self._fetched_at = metadata, keys, time.monotonic()

    async def _fetch(
        self,
        url: str,
        shape: type[T],
        *,
        data: dict[str, str] | None = None,
        auth: aiohttp.BasicAuth | None = None,
        headers: dict[str, str] | None = None,
    ) -> T:
        """GET (or POST a form to) one of the provider's addresses, decoded into shape."""
        method = "POST" if data is not None else "GET"
        try:
            async with (
                aiohttp.ClientSession(timeout=TIMEOUT) as session,
                session.request(method, url, data=data, auth=auth, headers=headers) as answer,
            ):
                body = await answer.content.read(MAX_DOCUMENT_BYTES + 1)
                status = answer.status
        except (aiohttp.ClientError, TimeoutError) as failed:
            raise ProviderUnavailable(type(failed).__name__) from failed
        if status == 400 and method == "POST":
            raise Unauthorized("the sign-in provider refused the code; sign in again")
        if status != 200 or len(body) > MAX_DOCUMENT_BYTES:
            raise ProviderUnavailable(f"HTTP {status}")
        try:
            return msgspec.json.decode(body, type=shape)
        except msgspec.DecodeError as unusable:
            raise ProviderUnavailable("its answer was not the JSON expected") from unusable


def _key_id(id_token: str) -> str | None:
    """The kid of a compact JWS's header, None when there is none or it cannot be read."""
    try:
        header = id_token.split(".", 1)[0]
        padded = header + "=" * (-len(header) % 4)
        kid = msgspec.json.decode(base64.urlsafe_b64decode(padded)).get("kid")
    except (ValueError, msgspec.DecodeError, AttributeError):
        return None
    return kid if isinstance(kid, str) else None
