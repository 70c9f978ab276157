"""The API edge: one ASGI layer in front of every route a client calls with a key.

In order: the key (`app/auth.py`), its rate limits (`app/rate_limits/admission.py`), the
route's query parameters and scope (`app/scopes.py`), then a keyed POST run once
(`app/idempotency.py`). One layer rather than four Litestar middlewares and a guard: each of
those wraps the request in its own objects, and a guard copies the route handler per request.
"""

from __future__ import annotations

from litestar.middleware import DefineMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.auth import authenticate
from app.idempotency import idempotency_middleware
from app.rate_limits.admission import admit_request
from app.response_headers import set_headers
from app.scopes import check_route


def api_edge(app: ASGIApp, idempotent: bool = True) -> ASGIApp:
    """Authenticate, rate-limit and check the request, then run the route (once per
    Idempotency-Key when `idempotent`)."""
    route = idempotency_middleware(app) if idempotent else app

    async def edge(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "OPTIONS":
            # Litestar's own answer: 204 with Allow; it carries no data and needs no key.
            await app(scope, receive, send)
            return
        principal = await authenticate(scope)
        headers = await admit_request(scope, principal)
        await check_route(scope, scope["route_handler"])
        await route(scope, receive, with_headers(send, headers) if headers else send)

    return edge


def with_headers(send: Send, headers: list[tuple[bytes, bytes]]) -> Send:
    """`send`, setting `headers` (raw pairs) on the response's start."""

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            set_headers(message, headers)
        await send(message)

    return send_with_headers


# Declared on the authenticated controllers (`app/api.py`), not the app, so unknown routes
# stay 404.
API_EDGE = DefineMiddleware(api_edge)
API_EDGE_WITHOUT_IDEMPOTENCY = DefineMiddleware(api_edge, idempotent=False)
