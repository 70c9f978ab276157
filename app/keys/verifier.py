"""Verify presented API keys without argon2 on the hot path.

A key verified once is remembered in-process (sha256 of the full key) for a short TTL.
Revocations arrive by LISTEN/NOTIFY and evict at once; while the listener is down
nothing is cached, so a revocation is never missed.

Guessing a key's secret must never lock out its holder (the prefix is not secret): a secret
this process has verified once is known by its sha256 and, when its cache entry expires, only
its row is read again (revoked? expired?), never argon2 and never the guessing limits. Wrong
secrets are remembered per client address and prefix, so one address's guesses cost that
address, not the key.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import time
import uuid
from datetime import UTC, datetime

import msgspec
import psycopg
from psycopg_pool import AsyncConnectionPool

from app.errors import Unauthorized
from app.invalidation import InvalidationListener
from app.keys import secrets
from db import api_keys

logger = logging.getLogger("eventgate.keys")

# argon2 runs at most this many at once per process, so a flood of wrong secrets always
# leaves a core to the event loop (and to every request whose key is cached).
ARGON2_AT_ONCE = max(1, (os.cpu_count() or 2) - 1)
# After a wrong secret for a prefix from an address, that address's other unknown secrets
# for the prefix are refused without hashing for this long: guessing costs the guesser.
FAILURE_MEMORY_SECONDS = 1.0
# Secrets verified once, remembered by sha256 (bounded: past it, the oldest are forgotten).
KNOWN_SECRETS = 100_000


class KeyRefused(Unauthorized):
    """A real key refused (wrong secret, revoked, expired): its tenant learns of it in the
    audit log; the client sees a plain 401."""

    def __init__(self, message: str, tenant_id: uuid.UUID, key_id: uuid.UUID) -> None:
        super().__init__(message)
        self.tenant_id = tenant_id
        self.key_id = key_id


class Principal(msgspec.Struct, frozen=True):
    """The verified caller: its key (or, in the console, its user), tenant and scopes."""

    key_id: uuid.UUID | None
    tenant_id: uuid.UUID
    prefix: str | None
    scopes: frozenset[str]
    expires_at: datetime | None
    tier: str = "standard"
    user_id: uuid.UUID | None = None
    email: str | None = None


class _Cached(msgspec.Struct):
    principal: Principal
    digest: bytes
    cached_until: float


def _usable(key: api_keys.ApiKey, now: datetime) -> bool:
    return key.revoked_at is None and (key.expires_at is None or key.expires_at > now)


class KeyVerifier:
    """Checks API keys for one process; owns the cache, its invalidation and last-use batching."""

    def __init__(
        self, pool: AsyncConnectionPool, listener: InvalidationListener, ttl_seconds: float
    ) -> None:
        self._pool = pool
        self._listener = listener
        self._ttl = ttl_seconds
        self._cache: dict[str, _Cached] = {}
        self._last_used: dict[tuple[uuid.UUID, uuid.UUID], datetime] = {}  # (tenant, key)
        self._pending: dict[bytes, asyncio.Future[Principal]] = {}
        self._argon2 = asyncio.Semaphore(ARGON2_AT_ONCE)
        # The sha256 of the secret argon2 accepted for each prefix.
        self._known: dict[str, bytes] = {}
        # An address's recent wrong secret for a prefix: until when it is remembered, and
        # whose key it was.
        self._failed_until: dict[tuple[str, str], tuple[float, KeyRefused]] = {}
        listener.subscribe(api_keys.INVALIDATION_CHANNEL, self.forget, self._cache.clear)

    async def verify(self, presented: str, client: str = "") -> Principal:
        """The principal of a valid key; Unauthorized for anything else. `client` is the
        address guesses are remembered under."""
        prefix = secrets.prefix_of(presented)
        if prefix is None:
            raise Unauthorized("the API key is malformed")
        now = datetime.now(UTC)
        digest = hashlib.sha256(presented.encode()).digest()
        cached = self._cache.get(prefix)
        if (
            cached is not None
            and cached.cached_until > time.monotonic()
            and hmac.compare_digest(cached.digest, digest)
        ):
            principal = cached.principal
            if principal.expires_at is not None and principal.expires_at <= now:
                raise Unauthorized("the API key has expired")
        else:
            principal = await self._verify_once(prefix, presented, digest, now, client)
        self._last_used[principal.tenant_id, principal.key_id] = now
        return principal

    async def _verify_once(
        self, prefix: str, presented: str, digest: bytes, now: datetime, client: str
    ) -> Principal:
        # Concurrent requests with the same uncached key share one argon2 run (a cold start
        # under load would otherwise run it once per request).
        pending = self._pending.get(digest)
        if pending is None:
            pending = asyncio.ensure_future(
                self._verify_in_database(prefix, presented, digest, now, client)
            )
            self._pending[digest] = pending
            pending.add_done_callback(lambda _: self._pending.pop(digest, None))
        return await asyncio.shield(pending)

    async def _verify_in_database(
        self, prefix: str, presented: str, digest: bytes, now: datetime, client: str
    ) -> Principal:
        known = hmac.compare_digest(self._known.get(prefix, b""), digest)
        if not known:
            self._raise_if_recently_failed(client, prefix)
        async with self._pool.connection() as conn:
            stored = await api_keys.get_for_verify(conn, prefix)
        if stored is None:
            raise Unauthorized("the API key is not valid")
        if not known:
            async with self._argon2:
                self._raise_if_recently_failed(client, prefix)  # failed while this one waited
                matches = await asyncio.to_thread(secrets.verify_key, stored.secret_hash, presented)
            if not matches:
                refused = KeyRefused("the API key is not valid", stored.tenant_id, stored.id)
                self._remember_failure(client, prefix, refused)
                raise refused
            self._remember_known(prefix, digest)
        key = stored
        if not _usable(key, now):
            raise KeyRefused("the API key has been revoked or has expired", key.tenant_id, key.id)
        principal = Principal(
            key.id,
            key.tenant_id,
            key.prefix,
            frozenset(key.scopes),
            key.expires_at,
            key.rate_limit_tier,
        )
        if self._listener.listening:
            self._cache[prefix] = _Cached(principal, digest, time.monotonic() + self._ttl)
        return principal

    def _remember_known(self, prefix: str, digest: bytes) -> None:
        if len(self._known) >= KNOWN_SECRETS:
            del self._known[next(iter(self._known))]
        self._known[prefix] = digest

    def _raise_if_recently_failed(self, client: str, prefix: str) -> None:
        until, refused = self._failed_until.get((client, prefix), (0.0, None))
        if refused is not None and until > time.monotonic():
            raise KeyRefused(refused.message, refused.tenant_id, refused.key_id)

    def _remember_failure(self, client: str, prefix: str, refused: KeyRefused) -> None:
        now = time.monotonic()
        if len(self._failed_until) > 10_000:  # bounded: forget the expired ones
            self._failed_until = {k: f for k, f in self._failed_until.items() if f[0] > now}
        self._failed_until[(client, prefix)] = (now + FAILURE_MEMORY_SECONDS, refused)

    def is_cached(self, prefix: str) -> bool:
        """True while a verification of this prefix is remembered."""
        return prefix in self._cache

    def forget(self, prefix: str) -> None:
        """Drop a cached verification (after a revocation or an expiry change)."""
        self._cache.pop(prefix, None)

    async def flush_last_used(self) -> None:
        """Write the last-use times gathered since the previous flush."""
        used, self._last_used = self._last_used, {}
        if not used:
            return
        try:
            async with self._pool.connection() as conn:
                await api_keys.touch_last_used(conn, used)
        except psycopg.Error as exc:
            logger.warning("could not record key last use: %s", exc)
            for key, at in used.items():
                self._last_used.setdefault(key, at)

    async def flush_last_used_every(self, seconds: float) -> None:
        """Run for ever: flush last-use times every `seconds`."""
        while True:
            await asyncio.sleep(seconds)
            await self.flush_last_used()
