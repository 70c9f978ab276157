"""OpenTelemetry traces: off unless the standard OTEL_* environment asks for them.

Tracing is on when `OTEL_TRACES_EXPORTER` is `otlp` or `console`, or when it is unset and an
OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`);
`OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` keep it off. Everything else (the
endpoint, headers, service name, sampler, batching) is read by the SDK from its own OTEL_*
variables. While it is off, the hot paths check `enabled()` and do nothing more.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from opentelemetry import context, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

logger = logging.getLogger("eventgate.tracing")

_state = {"enabled": False}
# W3C Trace Context only: it is what is stored with an event and sent on to receivers (a
# client's baggage is never forwarded).
_W3C = TraceContextTextMapPropagator()


def wanted(env: Mapping[str, str]) -> str | None:
    """The exporter the environment asks for (`otlp` or `console`), or None: tracing off."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter in ("otlp", "console"):
        return exporter
    if exporter:  # `none`, or an exporter Eventgate does not ship
        if exporter != "none":
            logger.warning("OTEL_TRACES_EXPORTER=%s is not supported; tracing is off", exporter)
        return None
    endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return "otlp" if any(env.get(name) for name in endpoints) else None


def configure(default_service_name: str) -> bool:
    """Install the process's tracer provider if the environment asks for tracing (once);
    True when tracing is on."""
    if _state["enabled"]:
        return True
    exporter = wanted(os.environ)
    if exporter is None:
        return False
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: default_service_name}))
    provider = TracerProvider(resource=resource)  # exports what is left at exit
    provider.add_span_processor(_processor(exporter))
    trace.set_tracer_provider(provider)
    _state["enabled"] = True
    return True


def _processor(exporter: str) -> SpanProcessor:
    if exporter == "console":
        return SimpleSpanProcessor(ConsoleSpanExporter())
    # Imported only when used: the exporter pulls in protobuf and requests.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    if os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf") != "http/protobuf":
        logger.warning("only OTLP over http/protobuf is shipped; exporting with it")
    return BatchSpanProcessor(OTLPSpanExporter())


def enabled() -> bool:
    """Whether this process traces."""
    return _state["enabled"]


def tracer(name: str) -> trace.Tracer:
    """The tracer of one part of Eventgate."""
    return trace.get_tracer(name)


def context_of(traceparent: str | None) -> context.Context | None:
    """The trace context a stored or received `traceparent` names (None: a new trace)."""
    if not traceparent:
        return None
    return extract({"traceparent": traceparent})


def current_traceparent() -> str | None:
    """The `traceparent` of the current span, to store or to send on."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier.get("traceparent")


def inject(headers: dict[str, str]) -> None:
    """Add the current span's `traceparent` (and `tracestate`) to outgoing headers."""
    _W3C.inject(headers)


def extract(headers: Mapping[str, str]) -> context.Context:
    """The trace context an incoming request's `traceparent` and `tracestate` continue."""
    return _W3C.extract(headers)
