"""Outgoing webhook HTTP: one shared keep-alive aiohttp session per worker event loop."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import msgspec
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from core.destinations import literal_address, refuse_address, well_formed_url
from core.settings import Settings

BODY_EXCERPT_BYTES = 4096
USER_AGENT = "Eventgate-Webhooks/1"
MAX_RETRY_AFTER_SECONDS = 24 * 3600


class Outcome(msgspec.Struct):
    """What one HTTP try gave: a status code and body excerpt, or an error."""

    status_code: int | None
    body: str | None
    error: str | None
    latency_ms: int
    started_at: datetime
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        """2xx is success; anything else, a timeout or an error is a failure."""
        return self.status_code is not None and 200 <= self.status_code < 300


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


class Sender:
    """POSTs signed webhook bodies with timeouts, no redirects and pooled connections."""

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

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
        """One try; never raises for anything the destination does."""
        started_at = datetime.now(UTC)
        start = time.perf_counter()
        try:
            self._refuse_literal(url)
            async with self.session.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                excerpt = await _read_excerpt(response)
                return Outcome(
                    response.status,
                    excerpt,
                    None,
                    _ms_since(start),
                    started_at,
                    _retry_after(response),
                )
        except TimeoutError:
            return Outcome(None, None, "timed out", _ms_since(start), started_at)
        except Exception as exc:  # any failure to get an answer is a failed try
            return Outcome(None, None, _describe(exc), _ms_since(start), started_at)

    def _refuse_literal(self, url: str) -> None:
        # aiohttp does not consult the resolver for IP literals.
        host, _ = well_formed_url(url)
        if not self.allow_private and literal_address(host) is not None:
            refuse_address(host, host)

    async def close(self) -> None:
        """Close the session and its connections."""
        await self.session.close()


async def _read_excerpt(response: aiohttp.ClientResponse) -> str:
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


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:1000]


_senders: dict[Any, Sender] = {}


def sender_for(settings: Settings) -> Sender:
    """The shared sender of the running event loop for these settings."""
    key = (
        asyncio.get_running_loop(),
        settings.allow_private_destinations,
        settings.delivery_timeout_seconds,
        settings.delivery_connect_timeout_seconds,
        settings.delivery_max_connections,
    )
    sender = _senders.get(key)
    if sender is None or sender.session.closed:
        sender = _senders[key] = Sender(settings)
    return sender


async def close_senders() -> None:
    """Close the senders of the running event loop (at worker shutdown)."""
    loop = asyncio.get_running_loop()
    for key in [k for k in _senders if k[0] is loop]:
        await _senders.pop(key).close()
