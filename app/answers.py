"""What every answer gets on its way out, errors and 404s included: one before-send hook
(Litestar awaits each hook for every message of every answer)."""

from __future__ import annotations

from litestar.types import Message, Scope

from app.http_hygiene import add_security_headers
from app.metrics import account_response
from app.options import complete_allow_header
from app.request_id import add_request_id_header


async def finish_answer(message: Message, scope: Scope) -> None:
    """The request id, a complete Allow, the security headers; then the answer is counted."""
    if message["type"] == "http.response.start":
        add_request_id_header(message, scope)
        complete_allow_header(message, scope)
        add_security_headers(message, scope)
    account_response(message, scope)
