"""Rate limiting at the edge: every authenticated request is taken from its key's counters
before the handler runs, and every answer carries the RateLimit headers (`app/edge.py`)."""

from __future__ import annotations

import time
import uuid

from litestar import Litestar
from litestar.types import Scope

from app.audit import record_block
from app.keys.verifier import Principal
from app.rate_limits.limiter import RateLimiter


def route_of(scope: Scope) -> str:
    """The route a request is counted under: method and path template, `POST /v1/events`."""
    handler = scope["route_handler"]
    template = scope.get("path_template") or min(handler.paths)
    return f"{scope['method']} {template.rstrip('/') or '/'}"


class BlockMemory:
    """When each key's last block was audited: at most one entry per key a minute per
    process, so a client hammering past its limit cannot flood the audit log."""

    def __init__(self, every_seconds: float = 60.0) -> None:
        self._every = every_seconds
        self._last: dict[uuid.UUID, float] = {}

    def first_in_a_while(self, key_id: uuid.UUID) -> bool:
        """True (and remembered) when this key's block was not audited lately."""
        now = time.monotonic()
        if self._last.get(key_id, -self._every) > now - self._every:
            return False
        if len(self._last) > 10_000:
            self._last = {k: t for k, t in self._last.items() if t > now - self._every}
        self._last[key_id] = now
        return True


blocks = BlockMemory()


async def admit_request(scope: Scope, principal: Principal) -> list[tuple[bytes, bytes]]:
    """Take the request from its key's counters: the RateLimit headers for its answer (raw
    pairs), or a 429 over the limits (the key's first in a minute audited)."""
    state = scope["app"].state
    if not state.settings.rate_limits_enabled:
        return []
    limiter: RateLimiter = state.rate_limiter
    decision = await limiter.admit_key(
        principal.tenant_id, principal.key_id, principal.tier, route_of(scope)
    )
    if not decision.taken.allowed:
        refused = decision.refuse("this API key")
        if blocks.first_in_a_while(principal.key_id):
            await record_block(state.pool, principal, refused)
        raise refused
    return decision.encoded_headers()


def route_names(app: Litestar) -> set[str]:
    """Every `METHOD /path` of the app, as overrides name them."""
    return {
        f"{method} {route.path.rstrip('/') or '/'}"
        for route in app.routes
        for method in getattr(route, "methods", ())
        if method not in ("OPTIONS", "HEAD")
    }
