"""What a transformation sees and what it may change.

An endpoint's `handler(webhook)` gets `{event_id, event_type, method, url, headers, payload,
cancel}` (`method` and `url` only for an HTTP endpoint) and returns it, changed: `payload` is
the body that is signed and sent, `headers` are added to the request (never the signature's or
the connection's own), `method` is POST, PUT or PATCH, `url` keeps the endpoint's origin, and
`cancel: true` sends nothing. A source's gets `{payload, event_type, headers, cancel}` before
the event is stored and may change the payload (an object), the event type, or cancel it.
Everything returned is checked here; the sandbox itself is `core/sandbox.py`.
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal, TypeVar
from urllib.parse import urlsplit

import msgspec

from core.destination_configs import forbidden_header
from core.vocabulary import RESERVED_TYPE_PREFIX

# What a transformation belongs to.
OwnerKind = Literal["endpoint", "source"]
MAX_CODE_BYTES: Final = 64 * 1024
MAX_OUTPUT_BYTES: Final = 1024 * 1024
METHODS: Final = ("POST", "PUT", "PATCH")
MAX_HEADERS: Final = 20
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
HEADER_VALUE = re.compile(r"^[\x20-\x7e]{0,1024}$")
URL_TEXT = re.compile(r"^[\x21-\x7e]{1,2048}$")


class Refused(Exception):
    """The handler returned something it may not (the message says what)."""


class EndpointResult(msgspec.Struct):
    """The fields of a returned endpoint webhook that matter (others are ignored)."""

    payload: Any = None
    method: str = "POST"
    url: str | None = None
    headers: dict[str, str] = {}
    cancel: bool = False


class SourceResult(msgspec.Struct):
    """The fields of a returned source webhook that matter."""

    payload: Any = None
    event_type: str = ""
    cancel: bool = False


Shape = TypeVar("Shape", EndpointResult, SourceResult)


class Shaped(msgspec.Struct, frozen=True):
    """A delivery as its endpoint's transformation left it."""

    body: bytes
    headers: dict[str, str]
    method: str
    url: str | None
    cancelled: bool


def endpoint_webhook(body: bytes, event_id: str, event_type: str | None, url: str | None) -> bytes:
    """The webhook object an endpoint's handler receives, as JSON."""
    head = msgspec.json.encode(
        {"event_id": event_id, "event_type": event_type, "headers": {}, "cancel": False}
        | ({"method": "POST", "url": url} if url is not None else {})
    )
    return head[:-1] + b',"payload":' + body + b"}"


def endpoint_result(output: str, url: str | None) -> Shaped:
    """Check an endpoint handler's result; Refused says what is wrong with it."""
    result = _decode(output, EndpointResult)
    if result.cancel:
        return Shaped(b"", {}, "POST", None, True)
    body = msgspec.json.encode(result.payload)
    method = result.method.upper()
    if url is None and (result.url is not None or method != "POST"):
        raise Refused("method and url can only be changed for an HTTP endpoint")
    if method not in METHODS:
        raise Refused(f"method must be one of {', '.join(METHODS)}")
    target = None if result.url is None or result.url == url else _same_origin(result.url, url)
    return Shaped(body, _headers(result.headers), method, target, False)


def source_webhook(payload: dict[str, Any], event_type: str, headers: dict[str, str]) -> bytes:
    """The webhook object a source's handler receives, as JSON."""
    return msgspec.json.encode(
        {"payload": payload, "event_type": event_type, "headers": headers, "cancel": False}
    )


def source_result(output: str) -> SourceResult:
    """Check a source handler's result: an object payload and a usable event type."""
    result = _decode(output, SourceResult)
    if result.cancel:
        return result
    if not isinstance(result.payload, dict):
        raise Refused("payload must be an object")
    event_type = result.event_type
    if not 0 < len(event_type) <= 255 or "\x00" in event_type:
        raise Refused("event_type must be 1 to 255 characters without NUL")
    if event_type.startswith(RESERVED_TYPE_PREFIX):
        raise Refused(f"event_type may not start with `{RESERVED_TYPE_PREFIX}`")
    return result


def _decode(output: str, shape: type[Shape]) -> Shape:
    try:
        return msgspec.json.decode(output, type=shape)
    except msgspec.ValidationError as exc:
        raise Refused(f"handler must return the webhook object: {exc}") from None
    except msgspec.DecodeError:
        raise Refused("handler's result is not JSON") from None


def _same_origin(target: str, url: str | None) -> str:
    if not URL_TEXT.match(target):
        raise Refused("url must be 1 to 2048 printable characters without spaces")
    given, mine = urlsplit(target), urlsplit(url or "")
    try:
        same = (given.scheme, given.netloc, given.port) == (mine.scheme, mine.netloc, mine.port)
    except ValueError:
        same = False
    if not same or given.fragment:
        raise Refused("url may change only the path and query of the endpoint's url")
    return target


def _headers(headers: dict[str, str]) -> dict[str, str]:
    if len(headers) > MAX_HEADERS:
        raise Refused(f"at most {MAX_HEADERS} headers")
    for name, value in headers.items():
        if not HEADER_NAME.match(name) or not HEADER_VALUE.match(value):
            raise Refused(f"header {name[:64]!r} is not a valid header name and value")
        if forbidden_header(name):
            raise Refused(f"header {name!r} cannot be set by a transformation")
    return {name.lower(): value for name, value in headers.items()}
