"""Query strings as strict as bodies: a whole-number parameter takes only digits (`limit=1.0`
is a 400) and a yes/no parameter only `true` or `false` (`include_archived=1` is a 400).

Litestar converts query strings leniently (they are text); this guard, declared once on the
app, checks the raw values of every handler's int and bool query parameters first."""

from __future__ import annotations

import re
from functools import cache

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.params import ParameterKwarg, ParamType

from app.errors import BadRequest

WHOLE_NUMBER = re.compile(r"-?[0-9]{1,18}")
YES_OR_NO = re.compile(r"true|false")


@cache
def _strict_kinds(handler: BaseRouteHandler) -> tuple[tuple[str, str], ...]:
    """Each query parameter of the handler that must be a whole number or a yes/no."""
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


async def strict_query(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """A guard: 400 naming the parameter for a number or a yes/no written any other way."""
    # async on purpose: Litestar runs a sync guard in a worker thread on every request.
    for name, kind in _strict_kinds(handler):
        for raw in connection.query_params.getall(name, []):
            if kind == "bool" and not YES_OR_NO.fullmatch(raw):
                raise BadRequest(f"`{name}` must be true or false", {"field": name})
            if kind == "int" and not WHOLE_NUMBER.fullmatch(raw):
                raise BadRequest(f"`{name}` must be a whole number", {"field": name})
