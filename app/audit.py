"""The audit trail of changes: services call `record` inside the transaction of the change;
who did it (key, address, user agent, request id) comes from the request, set once by the
authentication middleware."""

from __future__ import annotations

import logging
import uuid
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import msgspec
import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from app.client_ip import client_ip
from app.request_id import request_id
from db import audit
from db.ids import new_id

if TYPE_CHECKING:  # litestar's types cost the operator's commands most of a second
    from litestar.types import Scope


class Actor(msgspec.Struct, frozen=True):
    """Who is making the request's changes, and from where."""

    key_id: uuid.UUID | None
    key_prefix: str | None
    client_ip: str | None
    user_agent: str | None
    request_id: str | None
    user_id: uuid.UUID | None = None
    email: str | None = None


# The authenticated request whose changes are being made (a reference: the actor is only
# worked out when something is recorded, off the hot path).
_REQUEST: ContextVar[Scope | None] = ContextVar("eventgate_audit_request", default=None)
# An actor named outright, for changes made outside any request (the operator's CLI).
_NAMED: ContextVar[Actor | None] = ContextVar("eventgate_audit_actor", default=None)
NOBODY = Actor(None, None, None, None, None)


def acting_in(scope: Scope) -> None:
    """Remember the current request as the author of what its task records."""
    _REQUEST.set(scope)


def acting_as_operator(user: str) -> None:
    """Record what this task changes as the operator's command line, run by `user`."""
    _NAMED.set(Actor(None, f"cli:{user}"[:100], None, "eventgate-cli", None))


def _actor() -> Actor:
    named = _NAMED.get()
    if named is not None:
        return named
    scope = _REQUEST.get()
    if scope is None:
        return NOBODY
    principal = scope.get("user")
    headers = dict(scope.get("headers", ()))
    agent = headers.get(b"user-agent", b"").decode("latin-1")[:300] or None
    trusted = scope["app"].state.settings.trusted_proxies
    return Actor(
        getattr(principal, "key_id", None),
        getattr(principal, "prefix", None),
        client_ip(scope, trusted),
        agent,
        request_id(scope),
        getattr(principal, "user_id", None),
        getattr(principal, "email", None),
    )


# Fields of a view that are credentials themselves: a source's trigger path holds its token.
NEVER_KEPT = {"trigger_path", "secret", "previous_secret", "key"}


def _plain(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    fields = value if isinstance(value, dict) else msgspec.to_builtins(value)
    return {name: field for name, field in fields.items() if name not in NEVER_KEPT}


async def record(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    action: str,
    resource_type: str,
    resource_id: Any,
    *,
    before: Any = None,
    after: Any = None,
) -> None:
    """Append an entry to the tenant's audit chain, in `conn`'s transaction."""
    actor = _actor()
    entry = audit.NewEntry(
        tenant_id=tenant_id,
        id=new_id(),
        actor_key_id=actor.key_id,
        actor_key_prefix=actor.key_prefix,
        actor_user_id=actor.user_id,
        actor_email=actor.email,
        action=action,
        resource_type=resource_type,
        resource_id=str(resource_id),
        before=_plain(before),
        after=_plain(after),
        client_ip=actor.client_ip,
        user_agent=actor.user_agent,
        request_id=actor.request_id,
    )
    await audit.append(conn, entry)


async def _record_alone(
    pool: AsyncConnectionPool, tenant_id: uuid.UUID, action: str, key_id: uuid.UUID, after: dict
) -> None:
    # No change is being made: the entry has a transaction of its own, and failing to write
    # it never changes the answer.
    try:
        async with pool.connection() as conn, conn.transaction():
            await record(conn, tenant_id, action, "api_key", key_id, after=after)
    except psycopg.Error:
        logging.getLogger("eventgate.audit").warning("could not record %s", action)


async def record_refusal(pool: AsyncConnectionPool, scope: Scope, refused: Any) -> None:
    """Record a refused real key (wrong secret, revoked, expired) in its tenant's log."""
    acting_in(scope)
    after = {"reason": refused.message}
    await _record_alone(pool, refused.tenant_id, "auth.refused", refused.key_id, after)


async def record_block(pool: AsyncConnectionPool, principal: Any, refused: Any) -> None:
    """Record that a key was refused by its rate limits (the caller throttles how often)."""
    after = {"reason": refused.message, "policy": refused.details.get("policy")}
    await _record_alone(pool, principal.tenant_id, "rate_limit.block", principal.key_id, after)
