"""Payload filters on endpoints, compiled to a jsonpath predicate the fan-out statement runs.

A filter maps dotted payload paths to a value (equality) or to operators, with `$and` and `$or`
over lists of filters: `{"type": "paid", "amount": {"$gte": 100}, "$or": [...]}`. Only field
names (letters, digits, `_`, `-`) reach the jsonpath text, always quoted; every value is bound
through the vars document, so nothing a client sends is ever parsed as jsonpath.
"""

from __future__ import annotations

import re
from typing import Any

from app.errors import BadRequest

MAX_CONDITIONS = 50
MAX_DEPTH = 5
MAX_LIST = 100
MAX_STRING = 1000
SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
COMPARISONS = {"$eq": "==", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
OPERATORS = {*COMPARISONS, "$neq", "$in", "$nin", "$exists"}
Scalar = str | int | float | bool | None


class FilterError(BadRequest):
    """A filter that cannot be compiled; the message names the operator or path."""

    def __init__(self, message: str, where: str) -> None:
        super().__init__(f"filter: {message}", {"field": "filter", "at": where or "$"})


class _Compiler:
    def __init__(self) -> None:
        self.vars: dict[str, Any] = {}

    def bind(self, value: Any, where: str, *, ordered: bool = False) -> str:
        if isinstance(value, str) and len(value) > MAX_STRING:
            raise FilterError(f"a string longer than {MAX_STRING} characters", where)
        allowed = (str, int, float) if ordered else (str, int, float, bool, type(None))
        if not isinstance(value, allowed) or (ordered and isinstance(value, bool)):
            kinds = "a number or a string" if ordered else "a string, number, boolean or null"
            raise FilterError(f"`{where}` takes {kinds}", where)
        if len(self.vars) >= MAX_CONDITIONS * 2:
            raise FilterError(f"more than {MAX_CONDITIONS} conditions", where)
        name = f"v{len(self.vars)}"
        self.vars[name] = value
        return f"${name}"

    def filter(self, spec: Any, where: str, depth: int) -> str:
        if not isinstance(spec, dict) or not spec:
            raise FilterError("a filter is a non-empty object", where)
        if depth > MAX_DEPTH:
            raise FilterError(f"$and/$or nested deeper than {MAX_DEPTH}", where)
        return " && ".join(self.entry(key, value, where, depth) for key, value in spec.items())

    def entry(self, key: str, value: Any, where: str, depth: int) -> str:
        if key in ("$and", "$or"):
            at = f"{where}.{key}" if where else key
            if not isinstance(value, list) or not 1 <= len(value) <= MAX_LIST:
                raise FilterError(f"`{key}` takes a list of 1 to {MAX_LIST} filters", at)
            parts = [self.filter(item, f"{at}[{i}]", depth + 1) for i, item in enumerate(value)]
            joiner = " && " if key == "$and" else " || "
            return "(" + joiner.join(f"({part})" for part in parts) + ")"
        if key.startswith("$"):
            raise FilterError(f"unknown operator `{key}`", where)
        path = _path(key)
        if isinstance(value, dict) and any(k.startswith("$") for k in value):
            if not value:
                raise FilterError("an empty operator object", key)
            return " && ".join(self.operator(path, key, op, arg) for op, arg in value.items())
        return f"{path} == {self.bind(value, key)}"

    def operator(self, path: str, key: str, op: str, arg: Any) -> str:
        if op not in OPERATORS:
            raise FilterError(f"unknown operator `{op}` at `{key}`", key)
        if op in COMPARISONS:
            ordered = op != "$eq"
            return f"{path} {COMPARISONS[op]} {self.bind(arg, key, ordered=ordered)}"
        if op == "$neq":
            return f"!({path} == {self.bind(arg, key)})"
        if op == "$exists":
            if not isinstance(arg, bool):
                raise FilterError(f"`$exists` at `{key}` takes true or false", key)
            return f"exists({path})" if arg else f"!exists({path})"
        if not isinstance(arg, list) or not 1 <= len(arg) <= MAX_LIST:
            raise FilterError(f"`{op}` at `{key}` takes a list of 1 to {MAX_LIST} values", key)
        any_of = " || ".join(f"{path} == {self.bind(item, key)}" for item in arg)
        return f"({any_of})" if op == "$in" else f"!({any_of})"


def _path(key: str) -> str:
    segments = key.split(".")
    if len(segments) > 10 or not all(SEGMENT.match(segment) for segment in segments):
        raise FilterError(
            f"`{key[:100]}` is not a path: up to 10 dot-separated names of letters, digits, "
            "`_` or `-`",
            key[:100],
        )
    return "$" + "".join(f'."{segment}"' for segment in segments)


def compile_filter(spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The jsonpath predicate and its bound values for a filter; FilterError when invalid."""
    compiler = _Compiler()
    return compiler.filter(spec, "", 0), compiler.vars
