"""A person signing in to the console: email, password and, when on, a TOTP code.

Guessing must never lock the owner out (the lesson of the API keys' public prefixes). Every
attempt is counted per client address; per account, only attempts from browsers that never
signed in to it share one limit. A browser that did (it holds a device cookie, stored as its
sha256) keeps a limit of its own, so a flood of guesses from elsewhere fills the account's
shared limit and leaves its owner's browser able to sign in. argon2 runs in a thread, a few
at a time, and no pool connection is held while it runs or while a refusal waits.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from app.console import people
from app.console.sessions import digest, new_token, user_principal
from app.errors import BadRequest, EventgateError, Unauthorized
from app.keys.verifier import Principal
from app.rate_limits.limiter import HOUR, MINUTE, RateLimiter
from core.encryption import UndecryptableSecret
from core.settings import Settings
from db import console_users
from db.console_users import Credentials
from db.rate_limits import Window

DEVICE_DAYS = 90
WRONG = "the email, password or code is not right"
_ARGON2 = asyncio.Semaphore(max(1, (os.cpu_count() or 2) - 1))


class Attempt(msgspec.Struct, frozen=True):
    """What the sign-in form sent, and from where."""

    email: str
    password: str
    code: str
    device: str  # the device cookie, "" when the browser has none
    client: str


class SignedIn(msgspec.Struct, frozen=True):
    """The person's principal and the device cookie to (re)set."""

    principal: Principal
    device: str


async def sign_in(
    pool: AsyncConnectionPool, limiter: RateLimiter, settings: Settings, attempt: Attempt
) -> SignedIn:
    """The signed-in user; Unauthorized (after the refusal delay) or RateLimited."""
    try:
        email = people.email_of(attempt.email)
    except BadRequest:
        email = ""
    async with pool.connection() as conn:
        candidates = await console_users.credentials_by_email(conn, email) if email else []
        known = await _known_device(conn, candidates, attempt.device)
    await _admit(limiter, settings, attempt, email, known)
    try:
        user = await _matching(candidates, attempt.password)
        if user is None:
            raise Unauthorized(WRONG)
        if user.totp_secret_encrypted is not None:
            await _check_code(pool, user, attempt.code)
    except Unauthorized:
        await asyncio.sleep(settings.auth_failure_delay_seconds)
        raise
    device = attempt.device if known is not None and known[1] == user.id else new_token()
    if device != attempt.device:
        expires_at = datetime.now(UTC) + timedelta(days=DEVICE_DAYS)
        async with pool.connection() as conn:
            await console_users.add_device(
                conn, user.tenant_id, user.id, digest(device), expires_at
            )
    return SignedIn(principal_of(user), device)


def principal_of(user: Credentials | console_users.User) -> Principal:
    """What a signed-in user may do: its role's scopes."""
    return user_principal(user.tenant_id, user.id, user.email, user.role)


async def _known_device(
    conn: AsyncConnection, candidates: list[Credentials], device: str
) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The (tenant, user) this browser signed in as before, among the candidates."""
    if not device or len(device) > 100:
        return None
    for user in candidates:
        if await console_users.is_device(conn, user.tenant_id, user.id, digest(device)):
            return user.tenant_id, user.id
    return None


async def _admit(
    limiter: RateLimiter,
    settings: Settings,
    attempt: Attempt,
    email: str,
    known: tuple[uuid.UUID, uuid.UUID] | None,
) -> None:
    """Count the attempt; RateLimited past a limit (checked before any argon2)."""
    per_account = settings.sign_in_per_account_per_hour
    windows = [_per_address(settings, attempt.client)]
    if known is not None:
        bucket = f"sign-in:device:{digest(attempt.device).hex()}"
        windows.append(Window("sign-in-device", bucket, HOUR, per_account))
    elif email:
        windows.append(Window("sign-in-account", f"sign-in:email:{email}", HOUR, per_account))
    decision = await limiter.take(windows)
    if not decision.taken.allowed:
        raise decision.refuse("signing in from here (or to this account)")


def _per_address(settings: Settings, client: str) -> Window:
    """The limit every sign-in attempt from one address counts against."""
    per_address = settings.sign_in_per_address_per_minute
    return Window("sign-in", f"sign-in:ip:{client}", MINUTE, per_address)


async def _matching(candidates: list[Credentials], password: str) -> Credentials | None:
    """The first candidate the password opens; a dummy hash is compared when there is none,
    so an unknown email answers as slowly as a known one."""
    async with _ARGON2:
        for user in candidates or [None]:
            stored = user.password_hash if user else None
            if await asyncio.to_thread(people.password_matches, stored, password):
                return user
    return None


async def _check_code(pool: AsyncConnectionPool, user: Credentials, code: str) -> None:
    """Unauthorized unless the code is current and unused (a code is spent once)."""
    assert user.totp_secret_encrypted is not None
    try:
        secret = console_users.open_totp(user.totp_secret_encrypted, user.id)
    except UndecryptableSecret as exc:
        raise SecondFactorLost from exc
    step = people.totp_step(secret, code)
    if step is None:
        raise Unauthorized(WRONG if code else "enter the code from your authenticator app")
    async with pool.connection() as conn:
        if not await console_users.use_totp_step(conn, user.tenant_id, user.id, step):
            raise Unauthorized("that code was used already; wait for the next one")


class SecondFactorLost(EventgateError):
    """The TOTP secret cannot be opened: an operator's key is missing."""

    status_code, code = 503, "second_factor_unavailable"

    def __init__(self) -> None:
        super().__init__("the second factor cannot be checked now; tell your operator")


async def admit_callback(limiter: RateLimiter, settings: Settings, client: str) -> None:
    """Count a single sign-on callback against its address's sign-in limit (each one makes
    this server call the provider); RateLimited past it."""
    decision = await limiter.take([_per_address(settings, client)])
    if not decision.taken.allowed:
        raise decision.refuse("signing in from here")


async def vouched_user(pool: AsyncConnectionPool, email: str, verified: bool) -> Principal:
    """The console user a provider vouches for by a verified email (the first made, when the
    email has users in several tenants); Unauthorized when none."""
    if not verified:
        raise Unauthorized("your sign-in provider has not verified your email address")
    try:
        address = people.email_of(email)
    except BadRequest as refused:
        raise Unauthorized("your sign-in provider's email address is not usable here") from refused
    async with pool.connection() as conn:
        candidates = await console_users.credentials_by_email(conn, address)
    if not candidates:
        raise Unauthorized(
            f"{address} has no console account here; ask an admin of your team to invite you"
        )
    return principal_of(candidates[0])
