"""OPTIONS answers list every method of the path.

Litestar answers OPTIONS per group of handlers, so a path whose GET, PATCH and DELETE are
declared separately would list only some of them; this hook lists them all.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope


def _methods_by_path(app: Litestar) -> dict[str, str]:
    methods: dict[str, set[str]] = {}
    for route in app.routes:
        methods.setdefault(route.path, set()).update(getattr(route, "methods", ()))
    return {path: ", ".join(sorted(m)) for path, m in methods.items()}


def complete_allow_header(message: Message, scope: Scope) -> None:
    """On a response's start: on an OPTIONS answer, Allow names every method of the path."""
    if scope.get("method") != "OPTIONS":
        return
    handler = scope.get("route_handler")
    if handler is None:
        return
    app: Litestar = scope["app"]
    allowed = app.state.get("allow_by_path")
    if allowed is None:
        allowed = app.state["allow_by_path"] = _methods_by_path(app)
    for path in handler.paths:
        if path in allowed:
            MutableScopeHeaders.from_message(message)["allow"] = allowed[path]
            return
