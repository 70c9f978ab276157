"""Headers put on an answer's start message on its way out, written to its raw header list in
one pass. Litestar's MutableScopeHeaders scans every header once per name it sets, and these
run for every answer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the audit trail and the operator's commands need none of litestar
    from litestar.types import Message


RawHeaders = list[tuple[bytes, bytes]]


def raw_headers(message: Message) -> RawHeaders:
    """The start message's headers, as a list the caller may change in place."""
    headers = message.get("headers")
    if not isinstance(headers, list):
        headers = list(headers or ())
        message["headers"] = headers  # type: ignore[typeddict-unknown-key]
    return headers


def set_headers(message: Message, pairs: Sequence[tuple[bytes, bytes]]) -> None:
    """Set these headers (lower-case names), replacing any the answer already has."""
    headers = raw_headers(message)
    names = {name for name, _ in pairs}
    # ASGI answers carry lower-case names: one lookup in C for the common case, none set yet.
    if not names.isdisjoint(dict(headers)):
        headers[:] = [pair for pair in headers if pair[0] not in names]
    headers.extend(pairs)
