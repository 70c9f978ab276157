"""SQL of console_users, console_invitations and console_devices: the people of a tenant's
console, the links that invite them, and the browsers they signed in from."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from psycopg import AsyncConnection

from core.encryption import Where, keyring
from db.query import fetch_all, fetch_one, fetch_value

MAX_SAME_EMAIL = 10  # tenants one email is looked up in at sign-in


class User(msgspec.Struct):
    """A console user as its pages show it (never its password hash or TOTP secret)."""

    tenant_id: uuid.UUID
    id: uuid.UUID
    email: str
    role: str
    totp_enabled: bool
    disabled_at: datetime | None
    created_at: datetime


class Credentials(msgspec.Struct):
    """What sign-in checks: the password hash and the sealed TOTP secret."""

    tenant_id: uuid.UUID
    id: uuid.UUID
    email: str
    role: str
    password_hash: str
    totp_secret_encrypted: bytes | None
    totp_last_step: int | None


class Invitation(msgspec.Struct):
    """An invitation as its admin sees it."""

    tenant_id: uuid.UUID
    id: uuid.UUID
    email: str
    role: str
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None


USER_COLUMNS = (
    "tenant_id, id, email, role, totp_secret_encrypted IS NOT NULL AS totp_enabled,"
    " disabled_at, created_at"
)

# Add a user (console_users_pkey, console_users_tenant_id_email_key); NULL if the email is
# taken in the tenant.
INSERT = f"""
INSERT INTO console_users (tenant_id, id, email, password_hash, role)
VALUES (%(tenant_id)s, %(id)s, %(email)s, %(password_hash)s, %(role)s)
ON CONFLICT (tenant_id, email) DO NOTHING
RETURNING {USER_COLUMNS}
"""

# Whether the tenant has any user at all (console_users_pkey).
ANY_USER = "SELECT EXISTS (SELECT 1 FROM console_users WHERE tenant_id = %(tenant_id)s)"

# The tenant's users by email (console_users_tenant_id_email_key).
LIST = f"""
SELECT {USER_COLUMNS} FROM console_users WHERE tenant_id = %(tenant_id)s ORDER BY email
"""

# One user of the tenant (console_users_pkey).
GET = f"SELECT {USER_COLUMNS} FROM console_users WHERE tenant_id = %(tenant_id)s AND id = %(id)s"

# The enabled users with this email, in every tenant (console_users_email_idx): sign-in
# knows no tenant yet.
CREDENTIALS_BY_EMAIL = """
SELECT tenant_id, id, email, role, password_hash, totp_secret_encrypted, totp_last_step
FROM console_users WHERE email = %(email)s AND disabled_at IS NULL
ORDER BY created_at LIMIT %(limit)s
"""

# One enabled user's credentials (console_users_pkey).
CREDENTIALS = """
SELECT tenant_id, id, email, role, password_hash, totp_secret_encrypted, totp_last_step
FROM console_users WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND disabled_at IS NULL
"""

# Change a user's role or disable it; a disabled user's sessions end at once
# (console_users_pkey, console_sessions_user_idx).
UPDATE = f"""
WITH changed AS (
    UPDATE console_users SET role = coalesce(%(role)s, role),
        disabled_at = CASE WHEN %(disabled)s::boolean IS NULL THEN disabled_at
                           WHEN %(disabled)s THEN coalesce(disabled_at, now()) END,
        updated_at = now()
    WHERE tenant_id = %(tenant_id)s AND id = %(id)s
    RETURNING *
), ended AS (
    DELETE FROM console_sessions s USING changed
    WHERE s.tenant_id = changed.tenant_id AND s.user_id = changed.id
      AND changed.disabled_at IS NOT NULL
)
SELECT {USER_COLUMNS} FROM changed
"""

# Set a new password hash (console_users_pkey).
SET_PASSWORD = """
UPDATE console_users SET password_hash = %(password_hash)s, updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s
"""

# Turn the second factor on (a sealed secret) or off (NULL) (console_users_pkey).
SET_TOTP = """
UPDATE console_users SET totp_secret_encrypted = %(sealed)s, totp_last_step = NULL,
    updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s
"""

# Use a TOTP time step once: false when it (or a later one) was used already
# (console_users_pkey; the row lock orders two sign-ins with the same code).
USE_TOTP_STEP = """
UPDATE console_users SET totp_last_step = %(step)s
WHERE tenant_id = %(tenant_id)s AND id = %(id)s
  AND (totp_last_step IS NULL OR totp_last_step < %(step)s)
RETURNING true
"""

# Invite someone (console_invitations_pkey).
INVITE = """
INSERT INTO console_invitations (tenant_id, id, email, role, token_hash, invited_by, expires_at)
VALUES (%(tenant_id)s, %(id)s, %(email)s, %(role)s, %(token_hash)s, %(invited_by)s,
        %(expires_at)s)
RETURNING tenant_id, id, email, role, created_at, expires_at, accepted_at
"""

# The tenant's invitations not yet purged, newest first (console_invitations_pkey).
INVITATIONS = """
SELECT tenant_id, id, email, role, created_at, expires_at, accepted_at
FROM console_invitations WHERE tenant_id = %(tenant_id)s ORDER BY id DESC LIMIT 100
"""

# An invitation that may still be used (console_invitations_token_hash_idx): its link is
# looked up before the tenant is known.
OPEN_INVITATION = """
SELECT tenant_id, id, email, role, created_at, expires_at, accepted_at
FROM console_invitations
WHERE token_hash = %(token_hash)s AND accepted_at IS NULL AND expires_at > now()
"""

# Use an invitation, once: NULL when another request used it first (console_invitations_pkey).
ACCEPT = """
UPDATE console_invitations SET accepted_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND accepted_at IS NULL AND expires_at > now()
RETURNING email, role
"""

# Remember a browser a user signed in from (console_devices_pkey).
ADD_DEVICE = """
INSERT INTO console_devices (tenant_id, user_id, token_hash, expires_at)
VALUES (%(tenant_id)s, %(user_id)s, %(token_hash)s, %(expires_at)s)
ON CONFLICT DO NOTHING
"""

# Whether this browser signed in as this user before (console_devices_pkey).
IS_DEVICE = """
SELECT EXISTS (SELECT 1 FROM console_devices WHERE tenant_id = %(tenant_id)s
               AND user_id = %(user_id)s AND token_hash = %(token_hash)s AND expires_at > now())
"""

# Forget expired devices and invitations a day past their end (console_devices_expires_idx,
# console_invitations_expires_idx).
PURGE = """
WITH devices AS (DELETE FROM console_devices WHERE expires_at <= now())
DELETE FROM console_invitations WHERE expires_at <= now() - interval '1 day'
"""


def seal_totp(secret: str, user_id: uuid.UUID) -> bytes:
    """A TOTP secret as it is stored: sealed, bound to its user's row."""
    return keyring().seal(secret, Where("console_users", "totp_secret", user_id))


def open_totp(sealed: bytes, user_id: uuid.UUID) -> str:
    """A stored TOTP secret opened (UndecryptableSecret if no live key opens it)."""
    return keyring().open(sealed, Where("console_users", "totp_secret", user_id))


async def insert(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    email: str,
    password_hash: str,
    role: str,
) -> User | None:
    """Add a user; None when the tenant has one with this email."""
    params = {
        "tenant_id": tenant_id,
        "id": user_id,
        "email": email,
        "password_hash": password_hash,
        "role": role,
    }
    return await fetch_one(conn, INSERT, params, User)


async def any_user(conn: AsyncConnection, tenant_id: uuid.UUID) -> bool:
    """True when the tenant has a console user."""
    return bool(await fetch_value(conn, ANY_USER, {"tenant_id": tenant_id}))


async def list_users(conn: AsyncConnection, tenant_id: uuid.UUID) -> list[User]:
    """The tenant's users by email."""
    return await fetch_all(conn, LIST, {"tenant_id": tenant_id}, User)


async def get(conn: AsyncConnection, tenant_id: uuid.UUID, user_id: uuid.UUID) -> User | None:
    """One of the tenant's users."""
    return await fetch_one(conn, GET, {"tenant_id": tenant_id, "id": user_id}, User)


async def credentials_by_email(conn: AsyncConnection, email: str) -> list[Credentials]:
    """The enabled users with this email, in any tenant (a bounded few)."""
    params = {"email": email, "limit": MAX_SAME_EMAIL}
    return await fetch_all(conn, CREDENTIALS_BY_EMAIL, params, Credentials)


async def credentials(
    conn: AsyncConnection, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> Credentials | None:
    """One enabled user's credentials."""
    params = {"tenant_id": tenant_id, "id": user_id}
    return await fetch_one(conn, CREDENTIALS, params, Credentials)


async def update(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    role: str | None = None,
    disabled: bool | None = None,
) -> User | None:
    """Change a user's role or disable (True) or enable (False) it."""
    params = {"tenant_id": tenant_id, "id": user_id, "role": role, "disabled": disabled}
    return await fetch_one(conn, UPDATE, params, User)


async def set_password(
    conn: AsyncConnection, tenant_id: uuid.UUID, user_id: uuid.UUID, password_hash: str
) -> None:
    """Store a new password hash."""
    params = {"tenant_id": tenant_id, "id": user_id, "password_hash": password_hash}
    await conn.execute(SET_PASSWORD, params)


async def set_totp(
    conn: AsyncConnection, tenant_id: uuid.UUID, user_id: uuid.UUID, sealed: bytes | None
) -> None:
    """Turn the second factor on (a sealed secret) or off (None)."""
    await conn.execute(SET_TOTP, {"tenant_id": tenant_id, "id": user_id, "sealed": sealed})


async def use_totp_step(
    conn: AsyncConnection, tenant_id: uuid.UUID, user_id: uuid.UUID, step: int
) -> bool:
    """Spend a TOTP time step; False when it was spent already."""
    params = {"tenant_id": tenant_id, "id": user_id, "step": step}
    return bool(await fetch_value(conn, USE_TOTP_STEP, params))


async def invite(conn: AsyncConnection, **columns: object) -> Invitation:
    """Store an invitation (its token's hash only)."""
    found = await fetch_one(conn, INVITE, columns, Invitation)
    assert found is not None
    return found


async def invitations(conn: AsyncConnection, tenant_id: uuid.UUID) -> list[Invitation]:
    """The tenant's newest invitations."""
    return await fetch_all(conn, INVITATIONS, {"tenant_id": tenant_id}, Invitation)


async def open_invitation(conn: AsyncConnection, token_hash: bytes) -> Invitation | None:
    """The unused, unexpired invitation with this token hash."""
    return await fetch_one(conn, OPEN_INVITATION, {"token_hash": token_hash}, Invitation)


async def accept(conn: AsyncConnection, invitation: Invitation) -> bool:
    """Use the invitation; False when it was used (or expired) meanwhile."""
    params = {"tenant_id": invitation.tenant_id, "id": invitation.id}
    return await fetch_value(conn, ACCEPT, params) is not None


async def add_device(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    token_hash: bytes,
    expires_at: datetime,
) -> None:
    """Remember a browser the user signed in from."""
    params = {
        "tenant_id": tenant_id,
        "user_id": user_id,
        "token_hash": token_hash,
        "expires_at": expires_at,
    }
    await conn.execute(ADD_DEVICE, params)


async def is_device(
    conn: AsyncConnection, tenant_id: uuid.UUID, user_id: uuid.UUID, token_hash: bytes
) -> bool:
    """True when the user signed in from this browser before."""
    params = {"tenant_id": tenant_id, "user_id": user_id, "token_hash": token_hash}
    return bool(await fetch_value(conn, IS_DEVICE, params))


async def purge(conn: AsyncConnection) -> None:
    """Forget expired devices and old invitations."""
    await conn.execute(PURGE)
