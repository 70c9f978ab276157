"""A server span for each API request, continuing the caller's `traceparent`.

Added to the app only while tracing is on (`core/tracing.py`). Written here rather than taken
from the generic ASGI instrumentation because that one records the raw path and query, and a
trigger's path is its credential: a span is named and described by the route template only.
"""

from __future__ import annotations

from collections.abc import Callable

from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry.trace import SpanKind, Status, StatusCode

from app.metrics import route_template
from app.request_id import request_id
from core import tracing

_CONTEXT_HEADERS = (b"traceparent", b"tracestate")


def traced_requests(app: ASGIApp) -> ASGIApp:
    """Run each HTTP request inside a SERVER span named `METHOD /route/{template}`."""
    tracer = tracing.tracer("eventgate.api")

    async def traced(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        route = route_template(scope)
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _CONTEXT_HEADERS
        }
        with tracer.start_as_current_span(
            f"{scope['method']} {route}",
            context=tracing.extract(carrier) if carrier else None,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": scope["method"],
                "http.route": route,
                "url.scheme": scope.get("scheme", "http"),
                "eventgate.request.id": request_id(scope),
            },
        ) as span:

            async def send_traced(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = message["status"]
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await app(scope, receive, send_traced)
            principal = scope.get("user")
            if principal is not None:
                span.set_attribute("eventgate.tenant.id", str(principal.tenant_id))

    return traced


def traced_middleware() -> list[Callable[[ASGIApp], ASGIApp]]:
    """The tracing middleware if this process traces (configured here, once), else none."""
    return [traced_requests] if tracing.configure("eventgate-api") else []
