"""POST /v1/triggers/{token}: a provider's webhook, verified on its raw bytes, turned into an
event (stored, fanned out and enqueued like POST /v1/events), de-duplicated by the provider's
delivery id or an Idempotency-Key; every refusal is recorded for the source's owner."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from litestar import Request
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from psycopg_pool import AsyncConnectionPool

from app.client_ip import client_ip
from app.errors import (
    BadRequest,
    EventgateError,
    MalformedRequest,
    NotFound,
    PayloadTooLarge,
    TransformationFailed,
    UnsupportedMediaType,
)
from app.events.schemas import EventIn
from app.events.services import Ingest
from app.media import check_storable
from app.rate_limits.limiter import MINUTE, RateLimiter
from app.sources.schemas import (
    GitHub,
    Shopify,
    Slack,
    StandardWebhooks,
    Stripe,
    TriggerAccepted,
    Verification,
)
from app.sources.verification import verify
from core.sandbox import Sandbox
from core.settings import Settings
from core.transformations import Refused, source_result, source_webhook
from db import operational, sources
from db.ids import new_id
from db.rate_limits import Window

MAX_TRIGGER_BYTES = 512 * 1024
TOKEN = re.compile(r"^src_[A-Za-z0-9_-]{32}$")
IDEMPOTENCY_KEY = re.compile(r"^[\x20-\x7e]{1,255}$")
# Where each provider puts the id that stays the same when it delivers a webhook again.
DELIVERY_ID_HEADERS = {
    GitHub: "x-github-delivery",
    StandardWebhooks: "webhook-id",
    Shopify: "x-shopify-webhook-id",
}
DELIVERY_ID_FIELDS = {Stripe: "id", Slack: "event_id"}


class Received(msgspec.Struct):
    """What a verified trigger request holds."""

    payload: dict[str, Any]
    event_type: str
    dedup_key: str | None
    challenge: str | None = None
    cancelled: bool = False  # by the source's transformation: nothing is stored


class _Duplicate(Exception):
    """A concurrent redelivery committed its event first."""


class Triggers:
    """Trigger requests for one API process: its pool, ingest and rate limiter."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        ingest: Ingest,
        limiter: RateLimiter,
        settings: Settings,
        sandbox: Sandbox,
    ) -> None:
        self._pool = pool
        self._ingest = ingest
        self._limiter = limiter
        self._settings = settings
        self._sandbox = sandbox

    async def receive(self, request: Request, token: str) -> tuple[int, Any, dict[str, str]]:
        """(status, body, headers) for one trigger request; refusals raise (and are recorded)."""
        address = client_ip(request.scope, self._settings.trusted_proxies)
        source = await self._source(token, address)
        limit_headers = await self._admit(source.id, address)
        headers = {name.lower(): value for name, value in request.headers.items()}
        try:
            received = await _read(request, source, headers)
            if received.challenge is not None:
                return 200, {"challenge": received.challenge}, limit_headers
            if source.transformation is not None:
                received = await self._transform(source, received, headers)
            if received.cancelled:
                return 200, TriggerAccepted(None, False, cancelled=True), limit_headers
            event_id, duplicate = await self._store(source, received, headers)
        except EventgateError as refused:
            await self._record(source, refused, address, headers)
            raise
        status = 200 if duplicate else 202
        return status, TriggerAccepted(event_id, duplicate), limit_headers

    async def _source(self, token: str, address: str) -> sources.SourceWithSecret:
        source = None
        if TOKEN.match(token):
            async with self._pool.connection() as conn:
                source = await sources.by_token(conn, token)
        if source is None:
            if self._settings.rate_limits_enabled:  # unknown tokens count like missing keys
                decision = await self._limiter.admit_anonymous(address, None)
                if not decision.taken.allowed:
                    raise decision.refuse("this address without a valid trigger token")
            raise NotFound("no source has this trigger token")
        return source

    async def _admit(self, source_id: uuid.UUID, address: str) -> dict[str, str]:
        if not self._settings.rate_limits_enabled:
            return {}
        limit = self._settings.trigger_per_ip_per_minute
        window = Window("trigger", f"source:{source_id}:ip:{address}", MINUTE, limit)
        decision = await self._limiter.take([window])
        if not decision.taken.allowed:
            raise decision.refuse("this address for this source")
        return decision.headers()

    async def _transform(
        self, source: sources.SourceWithSecret, received: Received, headers: dict[str, str]
    ) -> Received:
        """The request as the source's handler leaves it (before anything is stored; no
        connection is held while it runs); TransformationFailed when it fails."""
        assert source.transformation is not None
        webhook = source_webhook(received.payload, received.event_type, headers)
        verdict = await self._sandbox.run(
            source.tenant_id, source.transformation, webhook, "source"
        )
        try:
            if not verdict.ok or verdict.output is None:
                where = f" (line {verdict.line})" if verdict.line else ""
                raise Refused(f"{verdict.error}{where}")
            result = source_result(verdict.output)
        except Refused as exc:
            raise TransformationFailed(f"the source's transformation failed: {exc}") from None
        if result.cancel:
            return msgspec.structs.replace(received, cancelled=True)
        return msgspec.structs.replace(
            received, payload=result.payload, event_type=result.event_type
        )

    async def _store(
        self, source: sources.SourceWithSecret, received: Received, headers: dict[str, str]
    ) -> tuple[uuid.UUID, bool]:
        kept = {name: headers[name] for name in source.keep_headers if name in headers}
        metadata: dict[str, Any] = {"source_id": str(source.id), "headers": kept}
        event = EventIn(source.name, received.event_type, received.payload, metadata)
        key = received.dedup_key
        if key is None:
            return (await self._ingest.one(source.tenant_id, event)).id, False
        ttl = timedelta(seconds=self._settings.idempotency_ttl_seconds)
        async with self._pool.connection() as conn:
            if (
                earlier := await sources.receipt(conn, source.tenant_id, source.id, key)
            ) is not None:
                return earlier, True
            try:
                async with conn.transaction():
                    row = await self._ingest.one(source.tenant_id, event, joined=conn)
                    if not await sources.claim_receipt(
                        conn, source.tenant_id, source.id, key, row.id, ttl
                    ):
                        raise _Duplicate  # takes the event back with it
                return row.id, False
            except _Duplicate:
                earlier = await sources.receipt(conn, source.tenant_id, source.id, key)
                assert earlier is not None
                return earlier, True

    async def _record(
        self, source: sources.Source, refused: EventgateError, address: str, headers: dict
    ) -> None:
        """Keep the refusal for the source's owner and tell the tenant's operational
        endpoints (at most once per window, with the count since the last notice)."""
        size = headers.get("content-length", "")
        rejection = sources.Rejection(
            id=new_id(),
            status_code=refused.status_code,
            reason=refused.message[:500],
            client_ip=address,
            header_names=sorted(headers)[:100],
            body_size=int(size) if size.isdigit() and len(size) < 12 else -1,
            created_at=datetime.now(UTC),
        )
        notice = {
            "source_id": str(source.id),
            "name": source.name,
            "status_code": refused.status_code,
            "reason": rejection.reason,
        }
        window = self._settings.operational_notice_window_seconds
        async with self._pool.connection() as conn, conn.transaction():
            await sources.reject(conn, source.tenant_id, source.id, rejection)
            await operational.emit_throttled(
                conn, source.tenant_id, "source.rejecting", source.id, notice, window
            )


async def _read(
    request: Request, source: sources.SourceWithSecret, headers: dict[str, str]
) -> Received:
    try:
        body = await request.body()
    except RequestEntityTooLarge:
        raise PayloadTooLarge(f"the body is larger than {MAX_TRIGGER_BYTES} bytes") from None
    scheme = msgspec.convert(source.verification, Verification)
    verify(scheme, source.secret, headers, body, time.time())
    payload = _parse(body, request.content_type[0])
    if isinstance(scheme, Slack) and payload.get("type") == "url_verification":
        return Received(payload, "", None, str(payload.get("challenge", "")))
    return Received(
        payload, _event_type(source, headers, payload), _dedup_key(scheme, headers, payload)
    )


def _parse(body: bytes, media_type: str) -> dict[str, Any]:
    """The body as a JSON object: JSON as sent (anything but an object under "body"), a form
    as its fields (a repeated field as a list)."""
    if media_type == "application/json" or media_type.endswith("+json"):
        try:
            value = msgspec.json.decode(body)
        except (msgspec.DecodeError, RecursionError) as exc:
            raise MalformedRequest(f"the body is not valid UTF-8 JSON: {exc}") from None
        check_storable(value)
        return value if isinstance(value, dict) else {"body": value}
    if media_type == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=1000)
        except (UnicodeDecodeError, ValueError) as exc:
            raise MalformedRequest(f"the form body is not valid: {exc}") from None
        form: dict[str, Any] = {}
        for name, value in pairs:
            earlier = form.get(name)
            form[name] = value if earlier is None else [*_as_list(earlier), value]
        check_storable(form)
        return form
    raise UnsupportedMediaType(
        "Content-Type must be application/json or application/x-www-form-urlencoded"
    )


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _event_type(source: sources.Source, headers: dict[str, str], payload: dict) -> str:
    if source.event_type is not None:
        found: Any = source.event_type
    elif source.event_type_header is not None:
        found = headers.get(source.event_type_header.lower())
        if not found:
            raise BadRequest(f"the {source.event_type_header} header (the event type) is missing")
    else:
        found = _resolve(payload, source.event_type_pointer or "")
    if not isinstance(found, str | int) or isinstance(found, bool) or found == "":
        raise BadRequest(f"{source.event_type_pointer} (the event type) is not a string")
    event_type = source.event_type_prefix + str(found)
    if len(event_type) > 255 or "\x00" in event_type:
        raise BadRequest("the event type is longer than 255 characters or holds NUL")
    return event_type


def _resolve(document: Any, pointer: str) -> Any:
    """The value at a JSON pointer (RFC 6901), or None."""
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(document, dict):
            document = document.get(token)
        elif isinstance(document, list) and token.isdigit() and int(token) < len(document):
            document = document[int(token)]
        else:
            return None
    return document


def _dedup_key(scheme: Verification, headers: dict[str, str], payload: dict) -> str | None:
    """The provider's delivery id, else the Idempotency-Key header, else None."""
    delivered: Any = None
    if (header := DELIVERY_ID_HEADERS.get(type(scheme))) is not None:
        delivered = headers.get(header)
    elif (field := DELIVERY_ID_FIELDS.get(type(scheme))) is not None:
        delivered = payload.get(field)
    if isinstance(delivered, str) and IDEMPOTENCY_KEY.match(delivered):
        return f"delivery:{delivered}"
    given = headers.get("idempotency-key")
    if given is None:
        return None
    if not IDEMPOTENCY_KEY.match(given):
        raise BadRequest("Idempotency-Key must be 1 to 255 printable characters")
    return f"idempotency-key:{given}"
