"""Which limits a request counts against, taking it from the shared counters, and the headers
that tell the client where it stands.

Counting is exact across processes (one statement on row-locked counters) and never admits
more than a limit: a process may count a few requests ahead (a reservation, as Convoy does)
and serve them from memory, but only within the windows they were counted in, and fewer as a
window fills up (one at a time near the end). A large reservation running low is refilled in
the background, so a busy key's requests do not all wait on the counting statement. The limits
themselves (tiers, overrides) are read from the database and reused for a few seconds.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid

import msgspec
import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from app.errors import RateLimited
from app.invalidation import InvalidationListener
from core.metrics import RATE_LIMITED
from core.settings import Settings
from db import rate_limits
from db.rate_limits import Override, Tier, Window

MINUTE, HOUR, DAY = 60, 3600, 86400
# Reserved requests stop being served this long before their first window ends. The window's
# end is measured from before the statement was sent, so it is never late; this margin only
# absorbs the two clocks' rates differing (monotonic clocks, slewed by NTP). Within it every
# request counts itself: at 1,000 requests a second, a 10 ms margin is 10 statements a second.
RESERVATION_MARGIN_SECONDS = 0.01
MAX_RESERVATION = 100
# A reservation of at least this many is refilled ahead when a quarter of it is left and its
# windows still have this long to run: smaller ones (a limit nearly reached) never count
# ahead of need, and a refill just before a window ends would mostly go unused.
REFILL_FROM_BATCH = 16
REFILL_MIN_SECONDS = 0.1


class Reservation(msgspec.Struct):
    """Requests counted in the database ahead of time, served from memory until `until`."""

    left: int
    until: float
    taken_at: float
    taken: rate_limits.Taken
    next_batch: int
    spare: Reservation | None = None  # counted ahead by a refill, served once this runs out
    refilling: bool = False  # one refill per reservation, even before it takes the lock

    def runs_low(self, now: float) -> bool:
        """A large reservation a quarter left, with time to use a refill, not refilled yet."""
        return (
            not self.refilling
            and self.next_batch >= REFILL_FROM_BATCH
            and self.left <= self.next_batch // 4
            and self.until - now >= REFILL_MIN_SECONDS
        )


class Plan(msgspec.Struct):
    """The windows a key's requests on one route count against, and their policy header."""

    windows: tuple[Window, ...]
    policy: str
    until: float

    @classmethod
    def of(cls, windows: list[Window], until: float) -> Plan:
        """A plan for these windows, valid until `until` (monotonic)."""
        policy = ", ".join(f'"{w.name}";q={w.limit};w={w.seconds}' for w in windows)
        return cls(tuple(windows), policy, until)


class Decision(msgspec.Struct):
    """What taking a request gave: admitted or not, and the windows it was counted in."""

    windows: tuple[Window, ...]
    taken: rate_limits.Taken
    policy: str = ""

    def _figures(self) -> tuple[Window, int, int, str] | None:
        """The tightest window, what is left of it, seconds to its reset, and the policy."""
        if not self.windows or self.taken.tightest is None:
            return None
        tight = self.windows[self.taken.tightest - 1]
        policy = self.policy or Plan.of(list(self.windows), 0.0).policy
        return tight, self.taken.remaining or 0, self.taken.reset_seconds or 1, policy

    def headers(self) -> dict[str, str]:
        """RateLimit-Policy and RateLimit (IETF httpapi draft) and the older X-RateLimit-*."""
        return {name.decode(): value.decode() for name, value in self.encoded_headers()}

    def encoded_headers(self) -> list[tuple[bytes, bytes]]:
        """The same headers as an answer's raw header pairs (built directly as bytes: this
        runs for every admitted request)."""
        figures = self._figures()
        if figures is None:
            return []
        tight, remaining, reset, policy = figures
        return [
            (b"ratelimit-policy", policy.encode()),
            (b"ratelimit", f'"{tight.name}";r={remaining};t={reset}'.encode()),
            (b"x-ratelimit-limit", b"%d" % tight.limit),
            (b"x-ratelimit-remaining", b"%d" % remaining),
            (b"x-ratelimit-reset", b"%d" % (int(time.time()) + reset)),
        ]

    def refuse(self, what: str) -> RateLimited:
        """The 429 for a refused request, with Retry-After and the RateLimit headers."""
        headers = {**self.headers(), "Retry-After": str(self.taken.reset_seconds or 1)}
        tight = self.windows[(self.taken.tightest or 1) - 1]
        RATE_LIMITED.labels(tight.name).inc()
        return RateLimited(
            f"{what} is over its limit of {tight.limit} requests per {tight.seconds} s; "
            f"retry in {headers['Retry-After']} s",
            {"policy": tight.name, "limit": tight.limit, "window_seconds": tight.seconds},
            headers,
        )


def _windows(prefix: str, bucket: str, per: dict[int, int | None]) -> list[Window]:
    names = {1: "burst", MINUTE: "minute", HOUR: "hour", DAY: "day"}
    return [
        Window(f"{prefix}{names[seconds]}", bucket, seconds, limit)
        for seconds, limit in per.items()
        if limit is not None
    ]


def tier_windows(key_id: uuid.UUID, tier: Tier) -> list[Window]:
    """A key's tier limits, counted over every route together."""
    per = {1: tier.burst, MINUTE: tier.per_minute, HOUR: tier.per_hour, DAY: tier.per_day}
    return _windows("", f"key:{key_id}", per)


def override_windows(key_id: uuid.UUID, override: Override) -> list[Window]:
    """A key's own limits on one route, counted apart from its other routes."""
    per = {MINUTE: override.per_minute, HOUR: override.per_hour, DAY: override.per_day}
    return _windows("route-", f"key:{key_id}:{override.route}", per)


def _reservation(taken: rate_limits.Taken, unserved: int, now: float) -> Reservation | None:
    """What an allowed count leaves to serve from memory, until its first window ends."""
    if not taken.allowed or taken.first_end_seconds is None:
        return None
    until = now + taken.first_end_seconds - RESERVATION_MARGIN_SECONDS
    next_batch = max(1, min(MAX_RESERVATION, (taken.remaining or 0) // 8))
    return Reservation(unserved, until, now, taken, next_batch)


class RateLimiter:
    """One per API process: reads limits (cached briefly) and takes requests."""

    def __init__(
        self, pool: AsyncConnectionPool, settings: Settings, listener: InvalidationListener
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._listener = listener
        self._tiers: tuple[float, dict[str, Tier]] = (0.0, {})
        self._overrides: dict[uuid.UUID, tuple[float, dict[str, Override]]] = {}
        self._reservations: dict[tuple[Window, ...], Reservation] = {}
        self._locks: dict[tuple[Window, ...], asyncio.Lock] = {}
        self._plans: dict[tuple[uuid.UUID, str, str], Plan] = {}
        self._planning: dict[tuple[uuid.UUID, str, str], asyncio.Future[Plan]] = {}
        self._generation = 0  # moves on at every announced change of limits
        self._refills: set[asyncio.Task[None]] = set()
        listener.subscribe(rate_limits.OVERRIDES_CHANNEL, self._on_change, self._forget_all)

    async def admit_key(
        self, tenant_id: uuid.UUID, key_id: uuid.UUID, tier_name: str, route: str
    ) -> Decision:
        """Take one request of an authenticated key on a route (`POST /v1/events`)."""
        plan = self._plans.get((key_id, tier_name, route))
        if plan is None or plan.until < time.monotonic():
            plan = await self._plan_once(tenant_id, key_id, tier_name, route)
        if not plan.windows:
            return Decision((), rate_limits.Taken(True, None, None, None))
        taken = self._from_reservation(plan.windows)  # no await: nothing interleaves
        if taken is not None:
            self._refill_when_low(plan.windows)
        elif self._window_closing(plan.windows):
            # Nothing may be reserved now: each request counts itself, side by side.
            async with self._pool.connection() as conn:
                taken = await rate_limits.take(conn, list(plan.windows))
        else:
            async with self._locks.setdefault(plan.windows, asyncio.Lock()):
                taken = self._from_reservation(plan.windows) or await self._reserve(plan.windows)
        return Decision(plan.windows, taken, plan.policy)

    def _window_closing(self, signature: tuple[Window, ...]) -> bool:
        """Within the margin before the reservation's first window ends, when a reservation
        could not be served before it does."""
        held = self._reservations.get(signature)
        now = time.monotonic()
        return held is not None and held.until <= now < held.until + RESERVATION_MARGIN_SECONDS

    async def _plan_once(
        self, tenant_id: uuid.UUID, key_id: uuid.UUID, tier_name: str, route: str
    ) -> Plan:
        """The key's plan read afresh, once for all the requests that need it meanwhile: when
        the pool is busy, a read per request would triple each request's waits for a
        connection just as the cache runs out, and a busy API would fall further behind."""
        plan_key = (key_id, tier_name, route)
        reading = self._planning.get(plan_key)
        if reading is None:
            reading = asyncio.ensure_future(self._plan(tenant_id, key_id, tier_name, route))
            self._planning[plan_key] = reading
            reading.add_done_callback(lambda done: self._planned(plan_key, done))
        # Shielded: a request that goes away must not cancel the others' read.
        return await asyncio.shield(reading)

    def _planned(self, plan_key: tuple[uuid.UUID, str, str], done: asyncio.Future[Plan]) -> None:
        if self._planning.get(plan_key) is done:
            del self._planning[plan_key]
        if not done.cancelled():
            done.exception()  # retrieved: the requests that waited have it already

    async def _plan(
        self, tenant_id: uuid.UUID, key_id: uuid.UUID, tier_name: str, route: str
    ) -> Plan:
        generation = self._generation
        tiers = await self._tier_map(refresh=False)
        if tier_name not in tiers:  # a tier created since the cache was filled
            tiers = await self._tier_map(refresh=True)
        tier = tiers.get(tier_name)
        windows = tier_windows(key_id, tier) if tier else []
        override = (await self._override_map(tenant_id, key_id)).get(route)
        if override is not None:
            windows += override_windows(key_id, override)
        if len(self._plans) > 50_000:
            self._plans.clear()
            self._locks.clear()
            self._reservations.clear()
        plan = Plan.of(windows, time.monotonic() + self._settings.rate_limit_cache_seconds)
        if generation == self._generation:  # no change was announced while it was read
            self._plans[(key_id, tier_name, route)] = plan
        return plan

    def _from_reservation(self, signature: tuple[Window, ...]) -> rate_limits.Taken | None:
        held = self._reservations.get(signature)
        now = time.monotonic()
        if held is not None and held.spare is not None and (now >= held.until or held.left <= 0):
            held = self._reservations[signature] = held.spare
        if held is None or now >= held.until or held.left <= 0:
            return None
        held.left -= 1
        reset = max(1, math.ceil((held.taken.reset_seconds or 1) - (now - held.taken_at)))
        remaining = (held.taken.remaining or 0) + held.left
        return msgspec.structs.replace(held.taken, remaining=remaining, reset_seconds=reset)

    async def _reserve(self, signature: tuple[Window, ...]) -> rate_limits.Taken:
        held = self._reservations.get(signature)
        now = time.monotonic()
        # A batch as large as the last one's windows allowed, in its windows or in the next
        # (where a full window refuses it and this one request is counted alone).
        batch = held.next_batch if held is not None else 1
        taken, batch = await self._count(signature, batch, fall_back=True)
        reservation = _reservation(taken, batch - 1, now)
        if reservation is not None:
            self._reservations[signature] = reservation
        if taken.allowed and taken.remaining is not None:
            # This request is the batch's first: the rest, served from memory, count down
            # from here to what the database says is left, so no two answers repeat a number.
            return msgspec.structs.replace(taken, remaining=taken.remaining + batch - 1)
        return taken

    def _refill_when_low(self, signature: tuple[Window, ...]) -> None:
        held = self._reservations.get(signature)
        lock = self._locks.get(signature)
        if held is None or lock is None or lock.locked() or not held.runs_low(time.monotonic()):
            return
        held.refilling = True
        task = asyncio.create_task(self._refill(signature, held, lock))
        self._refills.add(task)
        task.add_done_callback(self._refills.discard)

    async def _refill(
        self, signature: tuple[Window, ...], held: Reservation, lock: asyncio.Lock
    ) -> None:
        """Count the next batch while this one is still served; requests that find it empty
        meanwhile wait on the lock for the refill, not for a statement of their own."""
        async with lock:
            if self._reservations.get(signature) is not held:
                return  # a request found it empty first and counted a batch itself
            now = time.monotonic()
            try:
                taken, batch = await self._count(signature, held.next_batch, fall_back=False)
            except (psycopg.Error, PoolTimeout, OSError):
                return  # the request that finds the reservation empty counts, and answers
            held.spare = _reservation(taken, batch, now)

    async def _count(
        self, signature: tuple[Window, ...], batch: int, fall_back: bool
    ) -> tuple[rate_limits.Taken, int]:
        """Count `batch` requests in every window (or, with `fall_back`, at least this one when
        a batch does not fit); the result and the batch counted."""
        async with self._pool.connection() as conn:
            taken = await rate_limits.take(conn, list(signature), batch)
            if not taken.allowed and batch > 1 and fall_back:
                batch = 1  # not room for a batch: maybe for this one request
                taken = await rate_limits.take(conn, list(signature), batch)
        return taken, batch

    async def admit_anonymous(self, client: str, prefix: str | None) -> Decision:
        """Take one refused authentication: per client address, and per address and key
        prefix when a wrong secret was presented for a real-looking key (never per prefix
        alone: the prefix is public, and its holder must not pay for a guesser)."""
        settings = self._settings
        windows = [Window("anonymous", f"ip:{client}", MINUTE, settings.anonymous_per_minute)]
        if prefix is not None:
            limit = settings.wrong_secrets_per_prefix_per_minute
            windows.append(Window("wrong-secret", f"ip:{client}:prefix:{prefix}", MINUTE, limit))
        return await self.take(windows)

    async def may_record_refusal(self, key_id: uuid.UUID) -> bool:
        """Take one audit entry of a refused real key, per key per minute from anywhere."""
        limit = self._settings.wrong_secrets_per_prefix_per_minute
        window = Window("refusals-recorded", f"refused:{key_id}", MINUTE, limit)
        return (await self.take([window])).taken.allowed

    async def take(self, windows: list[Window]) -> Decision:
        """Count the request in every window (or in none, when one is full)."""
        if not windows:
            return Decision((), rate_limits.Taken(True, None, None, None))
        async with self._pool.connection() as conn:
            return Decision(tuple(windows), await rate_limits.take(conn, windows))

    async def _tier_map(self, refresh: bool) -> dict[str, Tier]:
        until, tiers = self._tiers
        if refresh or until < time.monotonic():
            async with self._pool.connection() as conn:
                tiers = {t.name: t for t in await rate_limits.list_tiers(conn)}
            self._tiers = (time.monotonic() + self._settings.rate_limit_cache_seconds, tiers)
        return tiers

    async def _override_map(self, tenant_id: uuid.UUID, key_id: uuid.UUID) -> dict[str, Override]:
        until, overrides = self._overrides.get(key_id, (0.0, {}))
        if until < time.monotonic():
            generation = self._generation
            async with self._pool.connection() as conn:
                found = await rate_limits.list_overrides(conn, tenant_id, key_id)
                overrides = {o.route: o for o in found}
            if len(self._overrides) > 50_000:
                self._overrides.clear()
            expires = time.monotonic() + self._settings.rate_limit_cache_seconds
            if generation == self._generation:
                self._overrides[key_id] = (expires, overrides)
        return overrides

    def _on_change(self, payload: str) -> None:
        try:
            self.forget_overrides(uuid.UUID(payload))
        except ValueError:
            self._forget_all()

    def _forget_all(self) -> None:
        # Listening (re)started or stopped: a change may have been missed meanwhile.
        self._overrides.clear()
        self._plans.clear()
        self._planning.clear()
        self._generation += 1

    def forget_overrides(self, key_id: uuid.UUID) -> None:
        """Read the key's overrides again on its next request (told by NOTIFY, after the
        change committed)."""
        self._overrides.pop(key_id, None)
        for plan_key in [k for k in self._plans if k[0] == key_id]:
            del self._plans[plan_key]
        for plan_key in [k for k in self._planning if k[0] == key_id]:
            del self._planning[plan_key]  # read again from after the change
        self._generation += 1
