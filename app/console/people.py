"""Console users: passwords (argon2id, hashed off the event loop and before any connection is
taken), roles, one-time invitations, TOTP second factors and a user's own sessions."""

from __future__ import annotations

import asyncio
import functools
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from app.audit import record
from app.console.sessions import ConsoleSession, digest, new_token
from app.errors import BadRequest, Conflict, Forbidden, NotFound
from app.scopes import ROLES
from core.settings import Settings
from db import console_sessions, console_users
from db.console_users import Invitation, User
from db.ids import new_id

USER = "console_user"
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 hashes any length; a megabyte of password is an attack
EMAIL = re.compile(r"[^@\s\x00-\x1f]{1,64}@[^@\s\x00-\x1f]{1,189}")
TOTP_ISSUER = "Eventgate"
_hasher = PasswordHasher()


@functools.cache
def _nobody() -> str:
    """A hash compared when no account matches, so an unknown email takes as long as a known.

    Made on first use: hashing at import would add argon2's cost to every process's start.
    """
    return _hasher.hash(new_token())


def email_of(given: str) -> str:
    """The email as stored (lower case), or BadRequest naming the field."""
    email = given.strip().lower()
    if not EMAIL.fullmatch(email):
        raise BadRequest("enter an email address such as ada@example.com", {"field": "email"})
    return email


def role_of(given: str) -> str:
    """A known role, or BadRequest."""
    if given not in ROLES:
        raise BadRequest(f"choose a role: {', '.join(ROLES)}", {"field": "role"})
    return given


def new_password() -> str:
    """A generated password for a user made from the command line (printed once)."""
    return new_token()[:24]


def check_password(password: str) -> None:
    """BadRequest for a password too short or too long."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise BadRequest(
            f"choose a password of at least {MIN_PASSWORD} characters", {"field": "password"}
        )


async def hash_password(password: str) -> str:
    """The argon2id hash of a checked password (in a thread)."""
    check_password(password)
    return await asyncio.to_thread(_hasher.hash, password)


def password_matches(password_hash: str | None, password: str) -> bool:
    """True when the password matches (slow: call it in a thread); None compares a dummy."""
    if len(password) > MAX_PASSWORD:
        return False
    try:
        return _hasher.verify(password_hash or _nobody(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def create_user(
    conn: AsyncConnection, tenant_id: uuid.UUID, email: str, password_hash: str, role: str
) -> User:
    """Add a user (audited); Conflict when the tenant has that email already."""
    user = await console_users.insert(conn, tenant_id, new_id(), email, password_hash, role)
    if user is None:
        raise Conflict(f"{email} is already a user of this console", {"field": "email"})
    await record(conn, tenant_id, "user.create", USER, user.id, after=_audited(user))
    return user


def _audited(user: User) -> dict[str, object]:
    return {"email": user.email, "role": user.role, "disabled": user.disabled_at is not None}


async def change_user(
    conn: AsyncConnection,
    session: ConsoleSession,
    user_id: uuid.UUID,
    *,
    role: str | None = None,
    disabled: bool | None = None,
) -> User:
    """An admin changes another user's role or disables (or enables) it; never their own,
    so a tenant always keeps the admin making the change."""
    tenant_id = session.principal.tenant_id
    if user_id == session.principal.user_id:
        raise Forbidden("you cannot change your own role or disable yourself")
    before = await console_users.get(conn, tenant_id, user_id)
    if before is None:
        raise NotFound("no such user")
    after = await console_users.update(conn, tenant_id, user_id, role=role, disabled=disabled)
    assert after is not None
    await record(
        conn,
        tenant_id,
        "user.update",
        USER,
        user_id,
        before=_audited(before),
        after=_audited(after),
    )
    return after


async def invite(
    conn: AsyncConnection, session: ConsoleSession, email: str, role: str, settings: Settings
) -> tuple[Invitation, str]:
    """A one-time invitation and its token (shown once, in the link)."""
    token = new_token()
    expires_at = datetime.now(UTC) + timedelta(hours=settings.console_invitation_hours)
    invitation = await console_users.invite(
        conn,
        tenant_id=session.principal.tenant_id,
        id=new_id(),
        email=email,
        role=role,
        token_hash=digest(token),
        invited_by=session.principal.user_id,
        expires_at=expires_at,
    )
    after = {"email": email, "role": role, "expires_at": expires_at.isoformat()}
    tenant_id = invitation.tenant_id
    await record(conn, tenant_id, "user.invite", "console_invitation", invitation.id, after=after)
    return invitation, token


async def open_invitation(conn: AsyncConnection, token: str) -> Invitation:
    """The invitation a link names, or NotFound (unknown, used or expired: one message)."""
    found = None if len(token) > 100 else await console_users.open_invitation(conn, digest(token))
    if found is None:
        raise NotFound("this invitation link has been used or has expired; ask for a new one")
    return found


async def accept(conn: AsyncConnection, invitation: Invitation, password_hash: str) -> User:
    """Use the invitation once and add its user (in the caller's transaction)."""
    if not await console_users.accept(conn, invitation):
        raise NotFound("this invitation link has been used or has expired; ask for a new one")
    tenant_id = invitation.tenant_id
    return await create_user(conn, tenant_id, invitation.email, password_hash, invitation.role)


def new_totp_secret() -> str:
    """A fresh base32 TOTP secret."""
    return pyotp.random_base32()


def totp_uri(secret: str, email: str) -> str:
    """The otpauth:// URI an authenticator app takes."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)


def totp_step(secret: str, code: str) -> int | None:
    """The time step a code is valid for (this one or either neighbour), or None."""
    code = code.strip().replace(" ", "")
    if not (len(code) == 6 and code.isascii() and code.isdigit()):
        return None
    totp, now = pyotp.TOTP(secret), time.time()
    for offset in (0, -1, 1):
        at = now + offset * totp.interval
        if totp.verify(code, for_time=at):
            return int(at // totp.interval)
    return None


async def enable_totp(
    conn: AsyncConnection, session: ConsoleSession, secret: str, code: str
) -> None:
    """Turn the second factor on once a code from the new secret proves the app has it."""
    user_id = _user_of(session)
    step = totp_step(secret, code) if len(secret) == 32 else None
    if step is None:
        raise BadRequest("that code does not match; enter the current one", {"field": "code"})
    tenant_id = session.principal.tenant_id
    await console_users.set_totp(conn, tenant_id, user_id, console_users.seal_totp(secret, user_id))
    await console_users.use_totp_step(conn, tenant_id, user_id, step)
    await record(conn, tenant_id, "user.totp_enabled", USER, user_id)


async def disable_totp(conn: AsyncConnection, session: ConsoleSession, code: str) -> None:
    """Turn the second factor off; a current code is needed, as for signing in."""
    user_id, tenant_id = _user_of(session), session.principal.tenant_id
    found = await console_users.credentials(conn, tenant_id, user_id)
    if found is None or found.totp_secret_encrypted is None:
        raise Conflict("the second factor is not on")
    secret = console_users.open_totp(found.totp_secret_encrypted, user_id)
    step = totp_step(secret, code)
    if step is None or not await console_users.use_totp_step(conn, tenant_id, user_id, step):
        raise BadRequest("that code does not match; enter the current one", {"field": "code"})
    await console_users.set_totp(conn, tenant_id, user_id, None)
    await record(conn, tenant_id, "user.totp_disabled", USER, user_id)


async def revoke_session(
    conn: AsyncConnection, session: ConsoleSession, session_id: uuid.UUID
) -> None:
    """End one of the user's own sessions (NotFound for anyone else's)."""
    user_id, tenant_id = _user_of(session), session.principal.tenant_id
    if not await console_sessions.revoke(conn, tenant_id, user_id, session_id):
        raise NotFound("no such session")
    await record(conn, tenant_id, "console.session_revoked", "console_session", session_id)


def _user_of(session: ConsoleSession) -> uuid.UUID:
    if session.principal.user_id is None:
        raise Forbidden("signed in with an API key: this page is for console users")
    return session.principal.user_id


async def change_password(
    pool: AsyncConnectionPool, session: ConsoleSession, current: str, new: str
) -> None:
    """A user changes their own password, knowing the current one (no connection is held
    while either is hashed)."""
    user_id, tenant_id = _user_of(session), session.principal.tenant_id
    async with pool.connection() as conn:
        found = await console_users.credentials(conn, tenant_id, user_id)
    stored = found.password_hash if found else None
    if not await asyncio.to_thread(password_matches, stored, current):
        raise BadRequest("your current password is not right", {"field": "current"})
    new_hash = await hash_password(new)
    async with pool.connection() as conn, conn.transaction():
        await console_users.set_password(conn, tenant_id, user_id, new_hash)
        await record(conn, tenant_id, "user.password_changed", USER, user_id)


async def people_of(
    conn: AsyncConnection, tenant_id: uuid.UUID
) -> tuple[list[User], list[Invitation]]:
    """The tenant's users and its newest invitations."""
    users = await console_users.list_users(conn, tenant_id)
    return users, await console_users.invitations(conn, tenant_id)


async def account_of(
    conn: AsyncConnection, session: ConsoleSession
) -> tuple[User | None, list[console_sessions.SessionRow]]:
    """The signed-in user and their live sessions (None and [] for an API key's session)."""
    principal = session.principal
    if principal.user_id is None:
        return None, []
    user = await console_users.get(conn, principal.tenant_id, principal.user_id)
    return user, await console_sessions.of_user(conn, principal.tenant_id, principal.user_id)
