"""X-Request-ID: the client's when it is sane, else a new one; echoed on every response."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from uuid_utils import uuid7

from app.response_headers import set_headers

if TYPE_CHECKING:  # the audit trail and the operator's commands need none of litestar
    from litestar.types import Message, Scope

HEADER = b"x-request-id"
_SCOPE_KEY = "eventgate_request_id"
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def request_id(scope: Scope | dict[str, Any]) -> str:
    """The request id of this request, decided once and remembered in the scope."""
    existing = scope.get(_SCOPE_KEY)  # type: ignore[union-attr]
    if existing:
        return existing
    given = ""
    for name, value in scope.get("headers", ()):  # type: ignore[union-attr]
        if name == b"x-request-id":
            given = value.decode("latin-1")
            break
    rid = given if _ACCEPTABLE.fullmatch(given) else str(uuid7())
    scope[_SCOPE_KEY] = rid  # type: ignore[index]
    return rid


def add_request_id_header(message: Message, scope: Scope) -> None:
    """On a response's start: X-Request-ID, on every response, errors and 404s included."""
    set_headers(message, ((HEADER, request_id(scope).encode()),))
