"""Request bodies must be JSON: anything else is a 415, whatever the route."""

from __future__ import annotations

from litestar import Request

from app.errors import UnsupportedMediaType


async def require_json(request: Request) -> None:
    """before_request: a request that carries a body must declare it as JSON."""
    headers = request.headers
    has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
    if not has_body:
        return
    media_type = request.content_type[0]
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType("Content-Type must be application/json")
