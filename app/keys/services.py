"""API key rules: who may create which key, rotation and revocation."""

from __future__ import annotations

import asyncio
import uuid
import weakref
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from app.audit import record
from app.errors import BadRequest, Conflict, Forbidden, NotFound
from app.keys import secrets
from app.keys.schemas import CreatedKey, CreateKeyRequest, KeyList, KeyPatch, KeyView
from app.keys.verifier import KeyVerifier, Principal
from app.pagination import decode_cursor, page_of
from app.rate_limits import services as rate_limit_rules
from app.scopes import grants
from app.views import to_view, to_views
from db import api_keys
from db.ids import new_id


class NewSecret(msgspec.Struct, frozen=True):
    """A key made and hashed before any connection is taken: argon2 holds none."""

    prefix: str
    full_key: str
    secret_hash: str


async def new_secret() -> NewSecret:
    """A fresh key and its argon2 hash (hashed off the event loop)."""
    prefix, full_key = secrets.generate()
    return NewSecret(prefix, full_key, await asyncio.to_thread(secrets.hash_key, full_key))


async def issue(
    conn: AsyncConnection,
    *,
    secret: NewSecret | None = None,
    tenant_id: uuid.UUID,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
    metadata: dict[str, Any] | None = None,
    created_by: uuid.UUID | None = None,
    rate_limit_tier: str = "standard",
) -> CreatedKey:
    """Create a key and return it with its full secret (shown this once)."""
    secret = secret or await new_secret()
    new_key = api_keys.NewKey(
        id=new_id(),
        tenant_id=tenant_id,
        name=name,
        prefix=secret.prefix,
        secret_hash=secret.secret_hash,
        scopes=sorted(set(scopes)),
        rate_limit_tier=rate_limit_tier,
        expires_at=expires_at,
        created_by=created_by,
        metadata=metadata or {},
    )
    key = await api_keys.insert(conn, new_key)
    return CreatedKey(**msgspec.structs.asdict(to_view(key, KeyView)), key=secret.full_key)


KEY = "api_key"


async def create(
    pool: AsyncConnectionPool, caller: Principal, request: CreateKeyRequest
) -> CreatedKey:
    """A key for the caller's tenant, with no scope the caller does not hold itself."""
    missing = [s for s in request.scopes if not grants(caller.scopes, s)]
    if missing:
        raise Forbidden("a key cannot grant scopes its creator lacks", {"scopes": missing})
    if request.expires_at is not None and request.expires_at <= datetime.now(UTC):
        raise BadRequest("expires_at must be in the future", {"field": "expires_at"})
    secret = await new_secret()
    async with pool.connection() as conn, conn.transaction():
        return await _create(conn, caller, request, secret)


async def _create(
    conn: AsyncConnection, caller: Principal, request: CreateKeyRequest, secret: NewSecret
) -> CreatedKey:
    tier = request.rate_limit_tier or caller.tier
    await rate_limit_rules.check_tier(conn, tier, caller.tier)
    created = await issue(
        conn,
        secret=secret,
        tenant_id=caller.tenant_id,
        name=request.name,
        scopes=list(request.scopes),
        expires_at=request.expires_at,
        metadata=request.metadata,
        created_by=caller.key_id,
        rate_limit_tier=tier,
    )
    await record(
        conn, caller.tenant_id, "key.create", KEY, created.id, after=to_view(created, KeyView)
    )
    return created


async def update(
    conn: AsyncConnection,
    verifier: KeyVerifier,
    caller: Principal,
    key_id: uuid.UUID,
    patch: KeyPatch,
) -> KeyView:
    """Rename a key or move it to a tier no more generous than its current one."""
    key = await _get(conn, caller, key_id)
    tier = None if patch.rate_limit_tier is msgspec.UNSET else patch.rate_limit_tier
    if tier is not None:
        await rate_limit_rules.check_tier(conn, tier, key.rate_limit_tier)
    name = None if patch.name is msgspec.UNSET else patch.name
    changed = await api_keys.update(conn, caller.tenant_id, key_id, name=name, rate_limit_tier=tier)
    assert changed is not None
    verifier.forget(changed.prefix)  # its cached principal carries the old tier
    after = to_view(changed, KeyView)
    await record(
        conn, caller.tenant_id, "key.update", KEY, key_id, before=to_view(key, KeyView), after=after
    )
    return after


async def list_page(
    conn: AsyncConnection,
    caller: Principal,
    cursor: str | None,
    limit: int,
    *,
    revoked: bool = True,
) -> KeyList:
    """A page of the caller's tenant's keys, oldest first (revoked ones only if asked)."""
    after = decode_cursor(cursor)
    rows = await api_keys.list_page(conn, caller.tenant_id, after, limit + 1, revoked=revoked)
    page, pagination = page_of(rows, limit, lambda key: key.id)
    return KeyList(to_views(page, KeyView), pagination)


async def _get(conn: AsyncConnection, caller: Principal, key_id: uuid.UUID) -> api_keys.ApiKey:
    key = await api_keys.get(conn, caller.tenant_id, key_id)
    if key is None:
        raise NotFound("no such API key")
    return key


async def get(conn: AsyncConnection, caller: Principal, key_id: uuid.UUID) -> KeyView:
    """One key of the caller's tenant, or NotFound."""
    return to_view(await _get(conn, caller, key_id), KeyView)


async def rotate(
    pool: AsyncConnectionPool,
    verifier: KeyVerifier,
    caller: Principal,
    key_id: uuid.UUID,
    grace_seconds: int,
) -> CreatedKey:
    """Issue a replacement with the same name and scopes; the old key expires after the grace.

    The replacement is hashed before a connection is taken; the old key's row stays locked
    until the transaction ends, so of concurrent rotations one wins and the others see it
    rotated, and a revocation waits or is seen. Rotations of one key in this process take
    turns, each checking the key first: a flood is refused without an argon2 hash apiece."""
    async with _rotating.setdefault(key_id, asyncio.Lock()):
        async with pool.connection() as conn, conn.transaction():
            _refuse_unrotatable(await api_keys.lock_for_rotation(conn, caller.tenant_id, key_id))
        secret = await new_secret()
        async with pool.connection() as conn, conn.transaction():
            return await _rotate(conn, verifier, caller, key_id, grace_seconds, secret)


# A key's rotations in flight in this process, one lock each (gone when none waits).
_rotating: weakref.WeakValueDictionary[uuid.UUID, asyncio.Lock] = weakref.WeakValueDictionary()


def _refuse_unrotatable(old: api_keys.LockedKey | None) -> api_keys.LockedKey:
    """The key, or NotFound / Conflict saying why it cannot be rotated."""
    if old is None:
        raise NotFound("no such API key")
    if old.revoked_at is not None:
        raise Conflict("a revoked key cannot be rotated")
    if old.replaced_by is not None:
        raise Conflict("the key was already rotated", {"replaced_by": str(old.replaced_by)})
    if old.expires_at is not None and old.expires_at <= datetime.now(UTC):
        raise Conflict("an expired key cannot be rotated")
    return old


async def _rotate(
    conn: AsyncConnection,
    verifier: KeyVerifier,
    caller: Principal,
    key_id: uuid.UUID,
    grace_seconds: int,
    secret: NewSecret,
) -> CreatedKey:
    old = _refuse_unrotatable(await api_keys.lock_for_rotation(conn, caller.tenant_id, key_id))
    replacement = await issue(
        conn,
        secret=secret,
        tenant_id=old.tenant_id,
        name=old.name,
        scopes=old.scopes,
        expires_at=old.expires_at,
        metadata={**old.metadata, "rotated_from": str(old.id)},
        created_by=caller.key_id,
        rate_limit_tier=old.rate_limit_tier,
    )
    grace = timedelta(seconds=grace_seconds)
    await api_keys.mark_rotated(conn, caller.tenant_id, old.id, replacement.id, grace)
    verifier.forget(old.prefix)
    await record(
        conn, caller.tenant_id, "key.rotate", KEY, old.id, after=to_view(replacement, KeyView)
    )
    return replacement


async def revoke(
    conn: AsyncConnection, verifier: KeyVerifier, caller: Principal, key_id: uuid.UUID
) -> KeyView:
    """Revoke a key of the caller's tenant and the keys rotated from it (again is fine);
    every process forgets them."""
    revoked = await api_keys.revoke(conn, caller.tenant_id, key_id)
    if not revoked:
        raise NotFound("no such API key")
    # Other processes hear it by NOTIFY; this one must not wait for its own echo.
    for key in revoked:
        verifier.forget(key.prefix)
    view = to_view(revoked[0], KeyView)
    await record(conn, caller.tenant_id, "key.revoke", KEY, key_id, after=view)
    return view
