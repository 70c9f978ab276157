"""Query strings as strict as bodies: a whole-number parameter takes only digits (`limit=1.0`
is a 400) and a yes/no parameter only `true` or `false` (`include_archived=1` is a 400).

Litestar converts query strings leniently (they are text); `app/scopes.py:check_route` checks
the raw values of every handler's int and bool query parameters first."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from litestar.handlers.base import BaseRouteHandler
from litestar.params import ParameterKwarg, ParamType
from litestar.types import Scope

from app.errors import BadRequest

WHOLE_NUMBER = re.compile(r"-?[0-9]{1,18}")
YES_OR_NO = re.compile(r"true|false")


def _strict_kinds(handler: BaseRouteHandler) -> tuple[tuple[str, str], ...]:
    """Each query parameter of the handler that must be a whole number or a yes/no."""
    # Keyed by the handler's function: a guard is given a fresh copy of the handler per request.
    found = _KINDS.get(handler.fn)
    if found is None:
        found = _KINDS[handler.fn] = _kinds_of(handler)
    return found


_KINDS: dict[object, tuple[tuple[str, str], ...]] = {}


def _kinds_of(handler: BaseRouteHandler) -> tuple[tuple[str, str], ...]:
    kinds = []
    for name, field in handler.parsed_fn_signature.parameters.items():
        declared = field.kwarg_definition
        alias = name
        if isinstance(declared, ParameterKwarg):
            if (
                declared.param_type not in (None, ParamType.QUERY)
                or declared.header
                or declared.cookie
            ):
                continue
            alias = declared.name or name
        types = {t.annotation for t in field.inner_types} if field.is_optional else set()
        types.add(field.annotation)
        if bool in types:
            kinds.append((alias, "bool"))
        elif int in types:
            kinds.append((alias, "int"))
    return tuple(kinds)


def strict_query(scope: Scope, handler: BaseRouteHandler) -> None:
    """400 naming the parameter for a number or a yes/no written any other way."""
    kinds = dict(_strict_kinds(handler))
    if not kinds:
        return
    given = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    for name, raw in given:
        kind = kinds.get(name)
        if kind == "bool" and not YES_OR_NO.fullmatch(raw):
            raise BadRequest(f"`{name}` must be true or false", {"field": name})
        if kind == "int" and not WHOLE_NUMBER.fullmatch(raw):
            raise BadRequest(f"`{name}` must be a whole number", {"field": name})
