"""The `http` destination: a signed POST over one shared keep-alive aiohttp session per
worker event loop, with the endpoint's headers, Basic, bearer or OAuth2 authentication, and
client certificate."""

from __future__ import annotations

import base64
import functools
import socket
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from ssl import SSLContext

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from core.destination_configs import (
    BasicAuth,
    BearerAuth,
    HttpAuth,
    HttpConfig,
    OAuth2ClientCredentials,
)
from core.destinations import literal_address, refuse_address, well_formed_url
from core.settings import Settings
from db.delivery_queue import Claimed
from workers.destinations.base import Message, Outcome, describe
from workers.destinations.client_tls import ClientCertificates
from workers.destinations.oauth2 import TokenCache, TokenRefused

BODY_EXCERPT_BYTES = 4096
USER_AGENT = "Eventgate-Webhooks/1"
MAX_RETRY_AFTER_SECONDS = 24 * 3600


class PublicOnlyResolver(AbstractResolver):
    """Resolves as usual, then refuses names that lead to non-public addresses (DNS rebinding
    between endpoint creation and a send is caught here, at connection time)."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve `host`; refuse it if any address is not public."""
        results = await self._inner.resolve(host, port, family)
        for result in results:
            refuse_address(host, result["host"])
        return results

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self._inner.close()


class HttpDestination:
    """POSTs signed webhook bodies with timeouts, no redirects and pooled connections, with
    the endpoint's headers, authentication and client certificate."""

    def __init__(self, settings: Settings) -> None:
        self.allow_private = settings.allow_private_destinations
        connector = aiohttp.TCPConnector(
            limit=settings.delivery_max_connections,
            resolver=None if self.allow_private else PublicOnlyResolver(),
            ttl_dns_cache=10,
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=settings.delivery_timeout_seconds,
                sock_connect=settings.delivery_connect_timeout_seconds,
            ),
            headers={"user-agent": USER_AGENT},
            auto_decompress=False,
        )
        self.tls = ClientCertificates()
        self.tokens = TokenCache(self.session, self._refuse_literal)

    async def send(self, delivery: Claimed, message: Message) -> Outcome:
        """One try (and, when an OAuth2 token was refused, one more with a fresh token)."""
        config = delivery.config
        if config is None:  # a plain endpoint: the signed POST alone
            url = message.url or delivery.url
            return await self.post(url, message.body, message.headers, method=message.method)
        assert isinstance(config, HttpConfig)
        headers = {**config.headers, **message.headers}
        ssl = await self.tls.context_for(config.tls) if config.tls else True
        auth = config.auth
        for fresh in (False, True):
            try:
                if auth is not None:
                    headers["authorization"] = await self._authorization(delivery, auth, ssl)
            except TokenRefused as exc:
                return _failed(str(exc), time.perf_counter(), datetime.now(UTC))
            url = message.url or delivery.url
            hidden = frozenset(name.lower() for name in config.headers)
            outcome = await self.post(url, message.body, headers, ssl, message.method, hidden)
            if outcome.status_code != 401 or not isinstance(auth, OAuth2ClientCredentials):
                return outcome
            if not fresh:
                self.tokens.forget(delivery.endpoint_id, auth)
        return outcome

    async def _authorization(
        self, delivery: Claimed, auth: HttpAuth, ssl: SSLContext | bool
    ) -> str:
        if isinstance(auth, BasicAuth):
            return basic_authorization(auth.username, auth.password)
        if isinstance(auth, BearerAuth):
            return f"Bearer {auth.token}"
        return f"Bearer {await self.tokens.token(delivery.endpoint_id, auth, ssl)}"

    async def post(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        ssl: SSLContext | bool = True,
        method: str = "POST",
        hidden: frozenset[str] = frozenset(),
    ) -> Outcome:
        """One request (a POST unless a transformation chose PUT or PATCH); never raises for
        anything the destination does. `hidden`: header names whose values are credentials."""
        started_at = datetime.now(UTC)
        start = time.perf_counter()
        try:
            self._refuse_literal(url)
            # Only a client certificate's context is passed: the default is the session's own.
            tls = {} if ssl is True else {"ssl": ssl}
            async with self.session.request(
                method, url, data=body, headers=headers, allow_redirects=False, **tls
            ) as response:
                excerpt = await read_excerpt(response)
                return Outcome(
                    200 <= response.status < 300,
                    response.status,
                    excerpt,
                    None,
                    _ms_since(start),
                    started_at,
                    _retry_after(response),
                    gone=response.status == 410,
                    request_headers=sent_headers(headers, hidden),
                    response_headers=answered_headers(response),
                )
        except TimeoutError:
            outcome = _failed("timed out", start, started_at)
        except Exception as exc:  # any failure to get an answer is a failed try
            outcome = _failed(describe(exc), start, started_at)
        outcome.request_headers = sent_headers(headers, hidden)
        return outcome

    def _refuse_literal(self, url: str) -> None:
        # aiohttp does not consult the resolver for IP literals.
        host, literal = _host_of(url)
        if literal and not self.allow_private:
            refuse_address(host, host)

    async def close(self) -> None:
        """Close the session and its connections."""
        await self.session.close()


@functools.lru_cache(maxsize=10_000)
def _host_of(url: str) -> tuple[str, bool]:
    """The URL's host and whether it is an IP literal (RefusedDestination when malformed);
    remembered, as endpoints send to the same URLs over and over."""
    host, _ = well_formed_url(url)
    return host, literal_address(host) is not None


def basic_authorization(username: str, password: str) -> str:
    """An Authorization header value for HTTP Basic (RFC 7617, UTF-8)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


MAX_ANSWER_HEADERS = 50
MAX_HEADER_VALUE = 500


def sent_headers(headers: dict[str, str], hidden: frozenset[str]) -> dict[str, str]:
    """The headers a try sent, as its attempt shows them: Authorization keeps its scheme
    only, the endpoint's own header values (write-only, maybe credentials) are hidden."""
    shown = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower == "authorization":
            value = f"{value.split(' ', 1)[0]} [redacted]"
        elif lower in hidden:
            value = "[write-only]"
        shown[lower] = value
    return shown


def answered_headers(response: aiohttp.ClientResponse) -> dict[str, str]:
    """The answer's headers as its attempt keeps them: bounded in number and length."""
    kept: dict[str, str] = {}
    for name, value in list(response.headers.items())[:MAX_ANSWER_HEADERS]:
        clean = value.replace("\x00", "")[:MAX_HEADER_VALUE]
        kept[name.lower()] = f"{kept[name.lower()]}, {clean}" if name.lower() in kept else clean
    return kept


def _failed(error: str, start: float, started_at: datetime) -> Outcome:
    return Outcome(False, None, None, error, _ms_since(start), started_at)


async def read_excerpt(response: aiohttp.ClientResponse) -> str:
    """The first BODY_EXCERPT_BYTES of an answer, as text."""
    chunks: list[bytes] = []
    size = 0
    while size < BODY_EXCERPT_BYTES:
        chunk = await response.content.read(BODY_EXCERPT_BYTES - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


def _retry_after(response: aiohttp.ClientResponse) -> float | None:
    """Retry-After of a 429 or 503, in seconds (delta or HTTP date), capped at a day."""
    value = response.headers.get("retry-after")
    if response.status not in (429, 503) or not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _ms_since(start: float) -> int:
    return round((time.perf_counter() - start) * 1000)
