"""Console and portal forms: URL-encoded bodies parsed strictly (UTF-8, no NUL, bounded), and
only ever handed to a page after their CSRF token matched the session's."""

from __future__ import annotations

import hmac
import json
import re
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import msgspec
from litestar import Request

from app.errors import (
    BadRequest,
    EventgateError,
    Forbidden,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from app.media import check_storable

MAX_FORM_BYTES = 256 * 1024  # an event type's schema is the largest field
MAX_FIELDS = 50
CSRF_FIELD = "csrf_token"

Form = dict[str, str]
T = TypeVar("T")


async def parse_form(request: Request) -> Form:
    """The fields of a URL-encoded body (the last value of a repeated name wins)."""
    if request.content_type[0] != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType("forms are sent as application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise PayloadTooLarge(f"a form is at most {MAX_FORM_BYTES} bytes")
    try:
        pairs = parse_qsl(
            body.decode("ascii"), errors="strict", max_num_fields=MAX_FIELDS, separator="&"
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("the form is not valid UTF-8 form data") from exc
    fields = dict(pairs)
    for name, value in fields.items():
        if "\x00" in name or "\x00" in value:
            raise BadRequest(f"`{name[:40]}` holds a NUL character", {"field": name[:40]})
    return fields


async def checked_form(request: Request, expected_csrf: str) -> Form:
    """The form, when its CSRF token is the one this session issued; Forbidden otherwise."""
    fields = await parse_form(request)
    given = fields.pop(CSRF_FIELD, "")
    if not expected_csrf or not hmac.compare_digest(given.encode(), expected_csrf.encode()):
        raise Forbidden("the form's CSRF token is missing or stale: reload the page and retry")
    return fields


async def provide_form(request: Request) -> Form:
    """Dependency of every POST page: the session's CSRF-checked form."""
    return await checked_form(request, request.auth.csrf_token)


def words(value: str | None) -> list[str]:
    """A list field: comma- or whitespace-separated words."""
    return [word for word in (value or "").replace(",", " ").split() if word]


def optional(value: str | None) -> str | None:
    """A text field, or None when left empty."""
    return value.strip() if value and value.strip() else None


def json_object(fields: Form, name: str) -> dict[str, Any] | None:
    """A JSON-object field (a schema, a filter), or None when left empty."""
    text = optional(fields.get(name))
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise BadRequest(
            f"{name}: this is not valid JSON; look near {where} for a missing quote, comma"
            " or bracket",
            {"field": name},
        ) from exc
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"{name}: this is not valid JSON", {"field": name}) from exc
    if not isinstance(value, dict):
        raise BadRequest(f"{name}: enter a JSON object, in braces {{...}}", {"field": name})
    check_storable(value)
    return value


def to_struct(values: dict[str, Any], kind: type[T]) -> T:
    """The form's values as a request Struct of the API; BadRequest naming the field and
    saying in plain words what is wrong."""
    try:
        return msgspec.convert(values, kind, strict=False)
    except msgspec.ValidationError as exc:
        where = _FIELD_PATH.search(str(exc))
        field = where.group(1) if where else ""
        details = {"field": field.split("[", 1)[0]} if where else None
        raise BadRequest(plain_words(str(exc), field), details) from exc


# Where msgspec says a value went wrong: "... - at `$.config.auth.token`".
_FIELD_PATH = re.compile(r"at `\$\.([^`]+)`")
# msgspec's wording, and how a form says it to a person.
_PLAIN = (
    (
        re.compile(r"Expected `str` matching regex '\^https\?://"),
        "enter a full URL that starts with https:// (or http://)",
    ),
    (
        re.compile(r"Expected `str` matching regex"),
        "has characters or a form that is not allowed here",
    ),
    (re.compile(r"Expected `str` of length <= (\d+)"), "is longer than {0} characters"),
    (re.compile(r"Expected `str` of length >= (\d+)"), "needs at least {0} characters"),
    (re.compile(r"Expected `int` >= (-?\d+)"), "must be at least {0}"),
    (re.compile(r"Expected `int` <= (-?\d+)"), "must be at most {0}"),
    (re.compile(r"Expected `array` of length <= (\d+)"), "takes at most {0} entries"),
    (re.compile(r"Object contains unknown field `([^`]+)`"), "`{0}` is not a setting it takes"),
    (re.compile(r"Object missing required field `([^`]+)`"), "needs `{0}`"),
)


def plain_words(message: str, field: str) -> str:
    """A validation message for a person: the field, then what is wrong with it."""
    name = field.split("[", 1)[0].replace("_", " ") or "the form"
    for pattern, words_ in _PLAIN:
        if found := pattern.search(message):
            return f"{name}: {words_.format(*found.groups())}"
    return f"{name}: {message.split(' - at ', 1)[0]}"


def whole_number(fields: Form, name: str) -> int | None:
    """An optional whole-number field."""
    text = optional(fields.get(name))
    if text is None:
        return None
    if not text.isdigit() or len(text) > 9:
        raise BadRequest(f"`{name}` must be a whole number", {"field": name})
    return int(text)


def refusal(refused: EventgateError | None) -> dict[str, Any]:
    """What a form page shows after a refusal: its status, the error, and the top-level field
    it names (`config.headers` and `/properties` point at `config` and `schema`'s box)."""
    if refused is None:
        return {"status": 200, "error": None, "error_field": ""}
    details = refused.details
    field = str(details.get("field", "")) if isinstance(details, dict) else ""
    top = field.split(".", 1)[0].split("/", 1)[0]
    return {"status": refused.status_code, "error": refused.message, "error_field": top}
