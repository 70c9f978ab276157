"""HTTP for the clients: the key, JSON, errors as exceptions, and retries.

A 429 or 503 (and a connection that failed) is retried, waiting what Retry-After says. Each
logical POST carries one Idempotency-Key for all its tries, so a retried ingest whose first
try was stored is answered from the stored answer, never stored twice."""

from __future__ import annotations

import asyncio
import email.utils
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from eventgate_client.errors import error_from

RETRIED_STATUSES = frozenset({429, 503})
USER_AGENT = "eventgate-client-python/0.1"


def path_segment(value: object) -> str:
    """A value placed in a path, escaped so it stays one segment."""
    return quote(str(value), safe="")


def retry_after(response: httpx.Response | None, attempt: int, cap: float) -> float:
    """How long to wait before the next try: Retry-After when given (seconds or a date),
    else a doubling backoff; never more than `cap`."""
    header = response.headers.get("retry-after") if response is not None else None
    wait = 0.5 * 2**attempt
    if header:
        try:
            wait = float(header)
        except ValueError:
            when = email.utils.parsedate_to_datetime(header)
            if when is not None:
                wait = (when - datetime.now(UTC)).total_seconds()
    return min(max(wait, 0.0), cap)


class _Config:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        timeout: float,
        max_retries: int,
        max_retry_wait: float,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"User-Agent": USER_AGENT}
        if api_key:
            self.headers["X-API-Key"] = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait

    def request(
        self,
        method: str,
        query: dict[str, Any] | None,
        body: Any,
        raw: bytes | None,
        headers: dict[str, str] | None,
    ) -> dict[str, Any]:
        """The keyword arguments of httpx's request() for one logical call."""
        sent = {**self.headers, **(headers or {})}
        if method == "POST" and "Idempotency-Key" not in sent:
            sent["Idempotency-Key"] = str(uuid.uuid4())  # the same for every retry
        params = {k: _query_value(v) for k, v in (query or {}).items() if v is not None}
        kwargs: dict[str, Any] = {"params": params, "headers": sent}
        if raw is not None:
            kwargs["content"] = raw
        elif body is not None:
            kwargs["json"] = body
        return kwargs

    def should_retry(self, response: httpx.Response | None, attempt: int) -> bool:
        if attempt >= self.max_retries:
            return False
        return response is None or response.status_code in RETRIED_STATUSES


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _result(response: httpx.Response) -> Any:
    if response.is_error:
        raise error_from(response)
    return response.json() if response.content else None


class SyncTransport:
    """Blocking calls on one httpx.Client."""

    def __init__(self, config: _Config, http: httpx.Client | None = None) -> None:
        self.config = config
        self.http = http or httpx.Client(base_url=config.base_url, timeout=config.timeout)

    def call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """One logical call, retried as the module says."""
        kwargs = self.config.request(method, query, body, raw, headers)
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError:
                if not self.config.should_retry(None, attempt):
                    raise
            if response is not None and not self.config.should_retry(response, attempt):
                return _result(response)
            time.sleep(retry_after(response, attempt, self.config.max_retry_wait))
            attempt += 1


class AsyncTransport:
    """Calls on one httpx.AsyncClient."""

    def __init__(self, config: _Config, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self.http = http or httpx.AsyncClient(base_url=config.base_url, timeout=config.timeout)

    async def call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """One logical call, retried as the module says."""
        kwargs = self.config.request(method, query, body, raw, headers)
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = await self.http.request(method, path, **kwargs)
            except httpx.TransportError:
                if not self.config.should_retry(None, attempt):
                    raise
            if response is not None and not self.config.should_retry(response, attempt):
                return _result(response)
            await asyncio.sleep(retry_after(response, attempt, self.config.max_retry_wait))
            attempt += 1
