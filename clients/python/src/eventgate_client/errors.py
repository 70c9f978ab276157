"""The API's error envelope as exceptions: one class per status a caller may handle."""

from __future__ import annotations

from typing import Any

import httpx


class EventgateError(Exception):
    """An error answer: its HTTP status and the envelope's code, message, details and id."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        request_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.request_id = request_id
        self.headers = headers or {}


class BadRequest(EventgateError):
    """400: the request was refused as invalid; details name the field."""


class Unauthorized(EventgateError):
    """401: the key is missing, wrong, expired or revoked."""


class Forbidden(EventgateError):
    """403: the key lacks the route's scope."""


class NotFound(EventgateError):
    """404: no such thing (or another tenant's)."""


class Conflict(EventgateError):
    """409: the thing is not in a state that allows this."""


class RateLimited(EventgateError):
    """429: over a rate limit, after every retry allowed."""


class ServiceUnavailable(EventgateError):
    """503: the database was unreachable, after every retry allowed."""


BY_STATUS: dict[int, type[EventgateError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
    503: ServiceUnavailable,
}


def error_from(response: httpx.Response) -> EventgateError:
    """The exception an error answer stands for (any body, envelope or not)."""
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
        details, request_id = error.get("details"), error.get("request_id")
    except (ValueError, KeyError, TypeError):
        code, message, details, request_id = "http_error", response.text[:500], None, None
    kind = BY_STATUS.get(response.status_code, EventgateError)
    return kind(response.status_code, code, message, details, request_id, dict(response.headers))
