"""Every sealed (encrypted) secret column together: which keys protect how many values, a
start-up check that the operator's keys open what is stored, and re-sealing under the first
key (`eventgate secrets rotate`) in bounded batches while everything keeps running."""

from __future__ import annotations

import uuid
from typing import LiteralString

import msgspec
from psycopg import AsyncConnection

from core.encryption import EncryptionKeyError, Keyring, UndecryptableSecret, Where
from core.vocabulary import WAITING_DELIVERY_STATUSES, sql_in
from db.query import fetch_all, fetch_value

# Every sealed value with where it lives (scans of endpoints and sources, small tables).
SEALED = """
SELECT 'endpoints' AS table_name, 'secret' AS column_name, id AS row_id, secret_encrypted AS value
FROM endpoints
UNION ALL
SELECT 'endpoints', 'previous_secret', id, previous_secret_encrypted FROM endpoints
WHERE previous_secret_encrypted IS NOT NULL
UNION ALL
SELECT 'endpoints', 'config', id, config_encrypted FROM endpoints
WHERE config_encrypted IS NOT NULL
UNION ALL
SELECT 'sources', 'secret', id, secret_encrypted FROM sources WHERE secret_encrypted IS NOT NULL
UNION ALL
SELECT 'console_users', 'totp_secret', id, totp_secret_encrypted FROM console_users
WHERE totp_secret_encrypted IS NOT NULL
"""

# How many values each key id protects (bytes 2-9 of a value name its key).
COUNT_BY_KEY = f"""
SELECT encode(substring(value from 2 for 8), 'escape') AS key_id, count(*) AS values
FROM ({SEALED}) AS sealed GROUP BY 1 ORDER BY 2 DESC
"""

# One value per key id, to check that a key opens it.
ONE_PER_KEY = f"""
SELECT DISTINCT ON (substring(value from 2 for 8)) table_name, column_name, row_id, value
FROM ({SEALED}) AS sealed ORDER BY substring(value from 2 for 8)
"""

# Every value whose key id is not among the live ones.
UNDER_OTHER_KEYS = f"""
SELECT table_name, column_name, row_id, value FROM ({SEALED}) AS sealed
WHERE NOT encode(substring(value from 2 for 8), 'escape') = ANY(%(key_ids)s)
"""

# Up to `limit` values sealed under another key than the sealing one.
NOT_UNDER = f"""
SELECT table_name, column_name, row_id, value FROM ({SEALED}) AS sealed
WHERE substring(value from 2 for 8) <> convert_to(%(key_id)s, 'SQL_ASCII')
LIMIT %(limit)s
"""

# Re-seal one value, unless it changed meanwhile (a rotation of the secret itself wins)
# (endpoints_pkey, sources_pkey).
RESEAL: dict[tuple[str, str], LiteralString] = {
    ("endpoints", "secret"): """
        UPDATE endpoints SET secret_encrypted = %(new)s
        WHERE id = %(row_id)s AND secret_encrypted = %(old)s""",
    ("endpoints", "previous_secret"): """
        UPDATE endpoints SET previous_secret_encrypted = %(new)s
        WHERE id = %(row_id)s AND previous_secret_encrypted = %(old)s""",
    ("endpoints", "config"): """
        UPDATE endpoints SET config_encrypted = %(new)s
        WHERE id = %(row_id)s AND config_encrypted = %(old)s""",
    ("sources", "secret"): """
        UPDATE sources SET secret_encrypted = %(new)s
        WHERE id = %(row_id)s AND secret_encrypted = %(old)s""",
    ("console_users", "totp_secret"): """
        UPDATE console_users SET totp_secret_encrypted = %(new)s
        WHERE id = %(row_id)s AND totp_secret_encrypted = %(old)s""",
}


# Give an endpoint a new secret and forget its previous one (endpoints_pkey).
REPLACE_ENDPOINT_SECRET = """
UPDATE endpoints SET secret_encrypted = %(new)s, previous_secret_encrypted = NULL,
    previous_secret_expires_at = NULL, updated_at = now()
WHERE id = %(row_id)s
RETURNING tenant_id
"""

# Forget an endpoint's destination config that no key opens (its credentials are lost) and
# pause the endpoint, its deliveries parked, until its config is given again
# (endpoints_pkey, deliveries_unfinished_idx).
DROP_CONFIG = f"""
WITH endpoint AS (
    UPDATE endpoints SET config_encrypted = NULL, is_active = false,
        disabled_reason = 'destination credentials lost: set its config again, then enable it',
        updated_at = now()
    WHERE id = %(row_id)s AND config_encrypted = %(old)s
    RETURNING id, tenant_id
), parked AS (
    UPDATE deliveries SET next_attempt_at = 'infinity', updated_at = now()
    WHERE endpoint_id = (SELECT id FROM endpoint) AND status IN {sql_in(WAITING_DELIVERY_STATUSES)}
)
SELECT tenant_id FROM endpoint
"""

# Forget an endpoint's previous secret, unless it changed meanwhile (endpoints_pkey).
DROP_PREVIOUS = """
UPDATE endpoints SET previous_secret_encrypted = NULL, previous_secret_expires_at = NULL
WHERE id = %(row_id)s AND previous_secret_encrypted = %(old)s
"""

# Turn off a user's second factor whose secret no key opens: they sign in with their password
# and set it up again (console_users_pkey scanned by id: a handful of rows).
DROP_TOTP = """
UPDATE console_users SET totp_secret_encrypted = NULL, totp_last_step = NULL, updated_at = now()
WHERE id = %(row_id)s AND totp_secret_encrypted = %(old)s
RETURNING tenant_id
"""

# Give a source a placeholder secret: it refuses every request until its provider's secret
# is set again (sources_pkey).
REPLACE_SOURCE_SECRET = """
UPDATE sources SET secret_encrypted = %(new)s, updated_at = now() WHERE id = %(row_id)s
RETURNING tenant_id
"""


class KeyCount(msgspec.Struct):
    """How many stored values one key protects."""

    key_id: str
    values: int


class SealedValue(msgspec.Struct):
    """One stored sealed value and where it lives."""

    table_name: str
    column_name: str
    row_id: uuid.UUID
    value: bytes

    @property
    def where(self) -> Where:
        """Its associated data."""
        return Where(self.table_name, self.column_name, self.row_id)


async def count_by_key(conn: AsyncConnection) -> list[KeyCount]:
    """Every key id found in stored values, with how many it protects."""
    return await fetch_all(conn, COUNT_BY_KEY, None, KeyCount)


async def check_keys(conn: AsyncConnection, keyring: Keyring) -> None:
    """EncryptionKeyError (one line naming the setting) unless the keys open one stored
    value of every key id found."""
    for sample in await fetch_all(conn, ONE_PER_KEY, None, SealedValue):
        try:
            keyring.open(sample.value, sample.where)
        except UndecryptableSecret as exc:
            raise EncryptionKeyError(
                f"EVENTGATE_ENCRYPTION_KEYS cannot open the stored secrets: {exc}"
            ) from None


async def under_lost_keys(conn: AsyncConnection, keyring: Keyring) -> list[SealedValue]:
    """Every stored value sealed under a key the keyring does not hold."""
    params = {"key_ids": keyring.key_ids}
    return await fetch_all(conn, UNDER_OTHER_KEYS, params, SealedValue)


async def replace_unreadable(
    conn: AsyncConnection, value: SealedValue, fresh: bytes
) -> uuid.UUID | None:
    """Store `fresh` in place of an unreadable value (an endpoint's previous one just goes);
    the tenant of the row."""
    statement = REPLACE_SOURCE_SECRET if value.table_name == "sources" else REPLACE_ENDPOINT_SECRET
    tenant_id: uuid.UUID | None = await fetch_value(
        conn, statement, {"new": fresh, "row_id": value.row_id}
    )
    return tenant_id


async def drop_config(conn: AsyncConnection, value: SealedValue) -> uuid.UUID | None:
    """Forget a destination config no key opens and pause its endpoint; the tenant."""
    tenant_id: uuid.UUID | None = await fetch_value(
        conn, DROP_CONFIG, {"row_id": value.row_id, "old": value.value}
    )
    return tenant_id


async def drop_totp(conn: AsyncConnection, value: SealedValue) -> uuid.UUID | None:
    """Turn off a second factor whose secret no key opens; the user's tenant."""
    tenant_id: uuid.UUID | None = await fetch_value(
        conn, DROP_TOTP, {"row_id": value.row_id, "old": value.value}
    )
    return tenant_id


async def drop_previous(conn: AsyncConnection, value: SealedValue) -> None:
    """Forget an endpoint's previous secret (its key was lost)."""
    await conn.execute(DROP_PREVIOUS, {"row_id": value.row_id, "old": value.value})


async def reseal_batch(conn: AsyncConnection, keyring: Keyring, limit: int) -> int:
    """Re-seal up to `limit` values not under the sealing key, in the caller's transaction;
    how many were found (0: every value is under the sealing key)."""
    params = {"key_id": keyring.sealing_key_id, "limit": limit}
    found = await fetch_all(conn, NOT_UNDER, params, SealedValue)
    for sealed in found:
        fresh = keyring.seal(keyring.open(sealed.value, sealed.where), sealed.where)
        statement = RESEAL[(sealed.table_name, sealed.column_name)]
        await conn.execute(statement, {"new": fresh, "row_id": sealed.row_id, "old": sealed.value})
    return len(found)
