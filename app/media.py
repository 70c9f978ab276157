"""Request bodies: JSON only (415 otherwise), within a nesting limit, without NUL characters,
and typed strictly (`0` is not a boolean, `"5"` is not a number) before any handler runs."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import SerializationException

from app.errors import BadRequest, MalformedRequest, UnsupportedMediaType

# Deeper JSON is refused with a 400; no real event nests this far.
MAX_JSON_DEPTH = 64
_NUL_ESCAPE = b"\\u0000"  # JSON can only carry NUL as this escape


async def check_json_body(request: Request) -> None:
    """before_request for routes that take a body: the checks Litestar's own parsing lacks."""
    headers = request.headers
    has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
    if not has_body:
        return
    media_type = request.content_type[0]
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType("Content-Type must be application/json")
    data_field = request.route_handler.parsed_fn_signature.parameters.get("data")
    if data_field is None:
        return
    try:
        decoded = await request.json()  # cached: Litestar's own parsing reuses it
    except (SerializationException, UnicodeDecodeError, ValueError) as exc:
        raise MalformedRequest(f"the body is not valid UTF-8 JSON: {exc}") from exc
    except RecursionError as exc:
        raise _too_deep() from exc
    body = await request.body()
    # A document nests no deeper than it has brackets (those in strings only add to the
    # count): counting them in C spares most bodies the walk in Python.
    if body.count(b"{") + body.count(b"[") > MAX_JSON_DEPTH:
        check_shape(decoded)
    if _NUL_ESCAPE in body:
        _refuse_nul(decoded, "")
    try:
        msgspec.convert(decoded, data_field.annotation, strict=True)
    except msgspec.ValidationError as exc:
        raise BadRequest(*_described(str(exc))) from exc


def _too_deep() -> MalformedRequest:
    return MalformedRequest(f"the body nests deeper than {MAX_JSON_DEPTH} levels")


def check_shape(value: Any) -> None:
    """BadRequest when a decoded JSON value nests deeper than MAX_JSON_DEPTH."""
    if not isinstance(value, dict | list):
        return
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise _too_deep()
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))


def check_storable(value: Any) -> None:
    """MalformedRequest or BadRequest for a decoded body too deep, or holding NUL."""
    check_shape(value)
    _refuse_nul(value, "")


def _refuse_nul(value: Any, path: str) -> None:
    if isinstance(value, str) and "\x00" in value:
        field = path.lstrip(".") or "body"
        raise BadRequest(f"`{field}` holds \\u0000 (NUL), which cannot be stored", {"field": field})
    if isinstance(value, dict):
        for key, child in value.items():
            _refuse_nul(key, f"{path}.{key}" if "\x00" not in key else path)
            _refuse_nul(child, f"{path}.{key}")
    elif isinstance(value, list):
        for i, child in enumerate(value):
            _refuse_nul(child, f"{path}[{i}]")


def _described(message: str) -> tuple[str, dict[str, str]]:
    """msgspec's message with the field it names: `... - at `$.a.b`` or `field `x``."""
    text, _, at = message.partition(" - at `$")
    path = at.rstrip("`").lstrip(".")
    if "field `" in text:
        name = text.split("field `", 1)[1].split("`", 1)[0]
        path = f"{path}.{name}" if path else name
    if path and f"`{path}`" not in text:
        text = f"{text} (field `{path}`)"
    return text, {"field": path or "body"}
