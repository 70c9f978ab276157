"""Idempotency-Key on every POST (Stripe's semantics, the IETF idempotency-key draft's codes).

The first request under a key runs inside a transaction that also stores its answer, so the
change and the stored answer commit together or not at all. A retry with the same method,
path and body gets that answer again, byte for byte, with `Idempotent-Replayed: true`; a
different request under the key gets 422; one sent while the first still runs gets 409.
Answers that are not 2xx change nothing and are not stored. For POST /v1/events an event's
`metadata.idempotency_key` serves as the key when the header is absent.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import msgspec
from litestar import Request
from litestar.middleware import DefineMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import BadRequest, EventgateError
from db import idempotency
from db.idempotency import StoredAnswer

HEADER = b"idempotency-key"
VALID_KEY = re.compile(r"[\x20-\x7e]{1,255}")
# The scope key under which the request's transaction is shared with the handler.
SHARED_TRANSACTION = "eventgate.transaction"
EVENTS_PATH = "/v1/events"


class KeyInUse(EventgateError):
    status_code, code = 409, "idempotency_key_in_use"


class KeyMismatch(EventgateError):
    status_code, code = 422, "idempotency_key_mismatch"


class _Discard(Exception):
    """Leave the request's transaction by rolling it back."""


class _Captured:
    """The handler's answer, held back until its transaction has committed."""

    def __init__(self) -> None:
        self.start: Message | None = None
        self.chunks: list[bytes] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))

    @property
    def status(self) -> int:
        return self.start["status"] if self.start else 500

    def header(self, name: bytes) -> str:
        headers = self.start.get("headers", []) if self.start else []
        return next((v.decode("latin-1") for k, v in headers if k.lower() == name), "")

    async def flush(self, send: Send) -> None:
        if self.start is not None:
            await send(self.start)
        await send({"type": "http.response.body", "body": b"".join(self.chunks)})


async def _replay(send: Send, answer: StoredAnswer) -> None:
    headers = [
        (b"content-type", answer.content_type.encode("latin-1")),
        (b"content-length", str(len(answer.body)).encode()),
        (b"idempotent-replayed", b"true"),
    ]
    await send({"type": "http.response.start", "status": answer.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


def _metadata_key(body: bytes) -> str | None:
    # Cheap test first: most events carry no idempotency key at all.
    if b'"idempotency_key"' not in body:
        return None
    try:
        value = msgspec.json.decode(body).get("metadata", {}).get("idempotency_key")
    except (msgspec.DecodeError, AttributeError, UnicodeDecodeError, RecursionError):
        return None
    return f"metadata:{value}" if isinstance(value, str) and VALID_KEY.fullmatch(value) else None


async def _key_of(scope: Scope, receive: Receive) -> tuple[str, bytes] | None:
    raw = next((v for k, v in scope.get("headers", ()) if k == HEADER), None)
    if raw is not None and not VALID_KEY.fullmatch(raw.decode("latin-1")):
        raise BadRequest(
            "Idempotency-Key must be 1 to 255 printable characters", {"field": "Idempotency-Key"}
        )
    body = await Request(scope, receive).body()  # cached: the handler reads it again
    key = raw.decode("latin-1") if raw is not None else None
    if key is None and scope["path"].rstrip("/") == EVENTS_PATH:
        key = _metadata_key(body)
    if key is None:
        return None
    fingerprint = hashlib.sha256(f"{scope['method']} {scope['path']}\n".encode() + body).digest()
    return key, fingerprint


def idempotency_middleware(app: ASGIApp) -> ASGIApp:
    """Run a keyed POST once per tenant and key; replay its answer to retries."""

    async def once(scope: Scope, receive: Receive, send: Send) -> None:
        keyed = await _key_of(scope, receive) if scope["method"] == "POST" else None
        if keyed is None:
            await app(scope, receive, send)
            return
        key, fingerprint = keyed
        state = scope["app"].state
        tenant_id = scope["user"].tenant_id
        captured = _Captured()
        try:
            async with state.pool.connection() as conn, conn.transaction():
                if not await idempotency.claim(conn, tenant_id, key):
                    raise KeyInUse(
                        "a request with this Idempotency-Key is still running",
                        None,
                        {"Retry-After": "1"},
                    )
                stored = await idempotency.get(conn, tenant_id, key)
                if stored is not None:
                    if stored.fingerprint != fingerprint:
                        raise KeyMismatch("this Idempotency-Key was used for a different request")
                    await _replay(send, stored)
                    return
                scope[SHARED_TRANSACTION] = conn  # type: ignore[literal-required]
                await app(scope, receive, captured.send)
                if not 200 <= captured.status < 300:
                    raise _Discard  # an error answer changes nothing and is not stored
                body = b"".join(captured.chunks)
                content_type = captured.header(b"content-type")
                answer = StoredAnswer(fingerprint, captured.status, content_type, body)
                ttl = timedelta(seconds=state.settings.idempotency_ttl_seconds)
                await idempotency.store(conn, tenant_id, key, answer, ttl)
        except _Discard:
            pass
        await captured.flush(send)

    return once


# Declared after authentication and rate limiting on every authenticated controller.
api_idempotency = DefineMiddleware(idempotency_middleware)
