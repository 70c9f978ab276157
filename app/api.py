"""The base of every controller whose routes a client calls with an API key."""

from __future__ import annotations

from litestar import Controller

from app.edge import API_EDGE, API_EDGE_WITHOUT_IDEMPOTENCY
from app.openapi import SECURITY


class ApiController(Controller):
    """Behind the API edge (`app/edge.py`): authenticated by key, rate-limited, checked
    against the scope in each route's opt["scope"], a keyed POST run once (idempotency), and
    documented as needing a key. Subclasses set path, tags and opt, and
    `before_request = check_json_body` when their routes take a body."""

    middleware = [API_EDGE]  # noqa: RUF012
    security = SECURITY


# For controllers whose answers must never be replayed (a new key is shown once) or which
# change nothing: no Idempotency-Key handling.
WITHOUT_IDEMPOTENCY = [API_EDGE_WITHOUT_IDEMPOTENCY]
