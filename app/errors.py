"""The domain error tree and the handlers that render every error in the standard envelope."""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
import psycopg
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from app.request_id import request_id
from core.encryption import UndecryptableSecret

logger = logging.getLogger("eventgate.errors")
_NAMED_FIELD = re.compile(r"field `([^`]+)`")


class EventgateError(Exception):
    """A failure the client should see, with its HTTP status and a stable code."""

    status_code = 500
    code = "internal_error"

    def __init__(
        self, message: str, details: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}


class BadRequest(EventgateError):
    status_code, code = 400, "validation_error"


class MalformedRequest(EventgateError):
    status_code, code = 400, "bad_request"


class Unauthorized(EventgateError):
    status_code, code = 401, "unauthorized"


class Forbidden(EventgateError):
    status_code, code = 403, "forbidden"


class NotFound(EventgateError):
    status_code, code = 404, "not_found"


class Conflict(EventgateError):
    status_code, code = 409, "conflict"


class PayloadTooLarge(EventgateError):
    status_code, code = 413, "payload_too_large"


class UnsupportedMediaType(EventgateError):
    status_code, code = 415, "unsupported_media_type"


class TransformationFailed(EventgateError):
    status_code, code = 422, "transformation_failed"


class RateLimited(EventgateError):
    status_code, code = 429, "rate_limited"


class ServiceUnavailable(EventgateError):
    status_code, code = 503, "service_unavailable"


class ErrorDetail(msgspec.Struct):
    """The body of every error response."""

    code: str
    message: str
    details: Any
    request_id: str


class ErrorBody(msgspec.Struct):
    """The standard error envelope: {"error": {code, message, details, request_id}}."""

    error: ErrorDetail


HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable_entity",
    429: "rate_limited",
    503: "service_unavailable",
}


def error_response(
    request: Request, status: int, code: str, message: str, details: Any = None
) -> Response[ErrorBody]:
    """Render one error in the envelope."""
    body = ErrorBody(ErrorDetail(code, message, details, request_id(request.scope)))
    return Response(body, status_code=status, media_type=MediaType.JSON)


def handle_domain_error(request: Request, exc: EventgateError) -> Response[ErrorBody]:
    """Domain errors carry their own status, code and headers (Retry-After, RateLimit...)."""
    response = error_response(request, exc.status_code, exc.code, exc.message, exc.details)
    response.headers.update(exc.headers)
    return response


def _field_of(item: dict[str, Any]) -> str | None:
    key = item.get("key")
    if key and key != "data":
        return key
    # msgspec names the field in the message for missing and unknown fields.
    named = _NAMED_FIELD.search(str(item.get("message", "")))
    return named.group(1) if named else None


def _validation_message(exc: ValidationException) -> tuple[str, Any]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    problems = [
        {"field": _field_of(item), "message": item.get("message")}
        for item in extra
        if isinstance(item, dict)
    ]
    if problems and problems[0]["message"]:
        first = problems[0]
        field = first["field"]
        where = f" (field `{field}`)" if field and f"`{field}`" not in first["message"] else ""
        return f"{first['message']}{where}", problems
    return "the request is not valid", problems or None


def handle_http_exception(request: Request, exc: HTTPException) -> Response[ErrorBody]:
    """Litestar's own errors (routing, body parsing, parameters) in the envelope."""
    status = exc.status_code
    if status >= 500:
        return handle_unexpected(request, exc)
    if isinstance(exc, ValidationException):
        message, details = _validation_message(exc)
        return error_response(request, status, "validation_error", message, details)
    code = HTTP_CODES.get(status, "error")
    response = error_response(request, status, code, exc.detail, None)
    response.headers.update(exc.headers or {})  # e.g. Allow on a 405
    return response


def handle_unexpected(request: Request, exc: Exception) -> Response[ErrorBody]:
    """Anything else: log it with the request id, tell the client nothing internal."""
    logger.exception("unhandled error (request %s)", request_id(request.scope), exc_info=exc)
    return error_response(
        request,
        HTTP_500_INTERNAL_SERVER_ERROR,
        "internal_error",
        "an internal error occurred; quote the request id when reporting it",
    )


def _unavailable(request: Request, message: str, retry_after: int) -> Response[ErrorBody]:
    response = error_response(request, 503, "service_unavailable", message)
    response.headers["Retry-After"] = str(retry_after)
    return response


def handle_database_unavailable(
    request: Request, exc: psycopg.OperationalError
) -> Response[ErrorBody]:
    """A lost or refused database connection (a restart, a failover): retrying is right."""
    logger.warning("database unavailable (request %s): %s", request_id(request.scope), exc)
    return _unavailable(request, "the database is unavailable; retry shortly", 1)


def handle_undecryptable_secret(request: Request, exc: UndecryptableSecret) -> Response[ErrorBody]:
    """A stored secret the configured keys cannot open: an operator's matter, never a guess."""
    logger.error("stored secret not decryptable (request %s): %s", request_id(request.scope), exc)
    message = "a stored secret cannot be decrypted with the configured keys; the operator is told"
    return _unavailable(request, message, 60)


def unstorable_message(exc: psycopg.DataError) -> str:
    """What to tell the client about a value the database refused."""
    if "NUL" in str(exc) or isinstance(exc, psycopg.errors.UntranslatableCharacter):
        return "a value holds \\u0000 (NUL), which cannot be stored"
    return f"a value cannot be stored: {exc.diag.message_primary or 'out of range'}"


def handle_unstorable_value(request: Request, exc: psycopg.DataError) -> Response[ErrorBody]:
    """A value the database cannot hold (NUL in text, out of range): the client's input."""
    return error_response(request, 400, "validation_error", unstorable_message(exc))


EXCEPTION_HANDLERS = {
    EventgateError: handle_domain_error,
    psycopg.DataError: handle_unstorable_value,
    psycopg.OperationalError: handle_database_unavailable,
    UndecryptableSecret: handle_undecryptable_secret,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}

ERROR_STATUS_DESCRIPTIONS = {
    400: "Validation error",
    401: "Missing, malformed, expired or revoked API key",
    403: "The API key lacks the required scope",
    404: "Not found (or owned by another tenant)",
    409: "Conflict with the resource's current state",
    413: "Request body too large",
    415: "Content-Type is not application/json",
    429: "Over a rate limit: wait Retry-After seconds (RateLimit headers say which)",
    503: "The database is unreachable for a moment; retry after Retry-After seconds",
}
