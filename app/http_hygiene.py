"""Security headers on every answer, CORS only when configured, gzip for large answers."""

from __future__ import annotations

from litestar.config.compression import CompressionConfig
from litestar.config.cors import CORSConfig
from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

from app.response_headers import raw_headers, set_headers
from core.settings import Settings

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "frame-ancestors 'none'",
}
# /docs runs Swagger UI's own scripts and styles, served by Eventgate itself.
DOCS_CSP = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"
HSTS = "max-age=31536000; includeSubDomains"
_RAW_SECURITY_HEADERS = tuple((k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items())
_RAW_SECURITY_NAMES = frozenset(name for name, _ in _RAW_SECURITY_HEADERS)


def add_security_headers(message: Message, scope: Scope) -> None:
    """On a response's start: the security headers, HSTS over https, and no server banner."""
    raw = raw_headers(message)
    # One pass over the raw headers (this runs on every answer), not one lookup per name.
    present = {name.lower(): value for name, value in raw}
    if _RAW_SECURITY_NAMES.isdisjoint(present):
        raw.extend(_RAW_SECURITY_HEADERS)
    else:
        raw.extend(pair for pair in _RAW_SECURITY_HEADERS if pair[0] not in present)
    # Console and portal pages set their own policy (a portal may be framed by its origin).
    own_policy = present.get(b"content-security-policy")
    if own_policy and b"frame-ancestors 'none'" not in own_policy:
        del MutableScopeHeaders.from_message(message)["x-frame-options"]
    if scope.get("path", "").startswith("/docs"):
        set_headers(message, ((b"content-security-policy", DOCS_CSP.encode()),))
    if scope.get("scheme") == "https":
        set_headers(message, ((b"strict-transport-security", HSTS.encode()),))
    if b"server" in present:
        del MutableScopeHeaders.from_message(message)["server"]


def cors_config(settings: Settings) -> CORSConfig | None:
    """CORS for the origins in EVENTGATE_CORS_ORIGINS; none (the browser's default) otherwise."""
    if not settings.cors_origins:
        return None
    return CORSConfig(
        allow_origins=list(settings.cors_origins),
        allow_headers=[
            "X-API-Key",
            "Authorization",
            "Content-Type",
            "Idempotency-Key",
            "X-Request-ID",
        ],
        expose_headers=[
            "X-Request-ID",
            "RateLimit",
            "RateLimit-Policy",
            "Retry-After",
            "Idempotent-Replayed",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
        ],
    )


# Answers over 1 KiB are gzipped for clients that ask for it (lists, the OpenAPI document).
# Routes whose answers are always small (single-event ingest, triggers) set this opt: the
# compression layer would only cost them time.
NO_COMPRESSION = "no_compression"
COMPRESSION = CompressionConfig(
    backend="gzip", minimum_size=1024, gzip_compress_level=6, exclude_opt_key=NO_COMPRESSION
)
