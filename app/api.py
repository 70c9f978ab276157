"""The base of every controller whose routes a client calls with an API key."""

from __future__ import annotations

from litestar import Controller

from app.auth import api_key_auth
from app.idempotency import api_idempotency
from app.openapi import SECURITY
from app.rate_limits.middleware import api_rate_limit


class ApiController(Controller):
    """Authenticated by key, rate-limited, a keyed POST run once (idempotency), each route
    guarded (by the app's `check_request`) by the scope in its opt["scope"], and documented as needing a key. Subclasses set
    path, tags and opt, and `before_request = check_json_body` when their routes take a body."""

    middleware = [api_key_auth, api_rate_limit, api_idempotency]  # noqa: RUF012
    security = SECURITY


# For controllers whose answers must never be replayed (a new key is shown once) or which
# change nothing: no Idempotency-Key handling.
WITHOUT_IDEMPOTENCY = [api_key_auth, api_rate_limit]
