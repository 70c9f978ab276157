"""`eventgate secrets`: a new key, what each key protects, re-encryption under the first, and
replacing what a lost key sealed."""

from __future__ import annotations

import argparse
import sys
from secrets import token_urlsafe

import psycopg

from app.audit import acting_as_operator, record
from cli.operator import operator_name
from core.encryption import Keyring, Where
from core.encryption import generate_key as new_key
from core.secrets import new_endpoint_secret
from core.settings import Settings
from db import sealed_secrets


def generate_key() -> None:
    """Print a new key (base64 of 32 random bytes) and its id."""
    key = new_key()
    print(key)
    keyring = Keyring.parse(key)
    print(
        f"key id {keyring.sealing_key_id}: put it first in EVENTGATE_ENCRYPTION_KEYS",
        file=sys.stderr,
    )


async def check(database_url: str) -> None:
    """Exit with one line naming the setting unless the keys open what is stored."""
    keyring = Keyring.from_settings(Settings.from_env())
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await sealed_secrets.check_keys(conn, keyring)


async def status(database_url: str, args: argparse.Namespace) -> None:
    """Print each key id found in stored values, how many it protects, and whether it is live."""
    keyring = Keyring.from_settings(Settings.from_env())
    live = keyring.key_ids
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        counts = {c.key_id: c.values for c in await sealed_secrets.count_by_key(conn)}
    for key_id in [*live, *(k for k in counts if k not in live)]:
        role = "encrypts" if key_id == live[0] else ("decrypts" if key_id in live else "MISSING")
        print(f"{key_id}\t{counts.get(key_id, 0)}\t{role}")


async def rotate(database_url: str, args: argparse.Namespace) -> None:
    """Re-encrypt every value not under the first key, a batch per transaction."""
    keyring = Keyring.from_settings(Settings.from_env())
    total = 0
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await sealed_secrets.check_keys(conn, keyring)
        while True:
            async with conn.transaction():
                done = await sealed_secrets.reseal_batch(conn, keyring, args.batch)
            total += done
            if done == 0:
                break
    print(f"re-encrypted {total} values; every stored secret is under key {keyring.sealing_key_id}")


ACTIONS = {"status": status, "rotate": rotate}


async def replace_lost(database_url: str, args: argparse.Namespace) -> None:
    """After every copy of a key is lost: each endpoint whose secret it sealed gets a new one,
    each such source a placeholder that refuses everything until its provider's secret is set
    again, each endpoint whose destination config it sealed is disabled until the config is
    given again, each user's second factor it sealed is turned off; a lost previous secret just
    goes. Each change is audited."""
    keyring = Keyring.from_settings(Settings.from_env())
    acting_as_operator(operator_name())
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        lost = await sealed_secrets.under_lost_keys(conn, keyring)
        if lost and not args.yes:
            sys.exit(
                f"{len(lost)} stored secrets are under keys no longer held; --yes replaces them"
            )
        for value in lost:
            async with conn.transaction():
                print(await _replace(conn, keyring, value))
    print(f"replaced {len(lost)} values", file=sys.stderr)


async def _replace(
    conn: psycopg.AsyncConnection, keyring: Keyring, value: sealed_secrets.SealedValue
) -> str:
    kind = value.table_name.removesuffix("s")
    if value.column_name == "totp_secret":
        tenant_id = await sealed_secrets.drop_totp(conn, value)
        if tenant_id is not None:
            await record(conn, tenant_id, "user.totp.replace_lost", "console_user", value.row_id)
        return f"user\t{value.row_id}\tsecond factor off: they sign in and set it up again"
    if value.column_name == "previous_secret":
        await sealed_secrets.drop_previous(conn, value)
        return f"{kind}\t{value.row_id}\tprevious secret dropped"
    if value.column_name == "config":
        tenant_id = await sealed_secrets.drop_config(conn, value)
        if tenant_id is not None:
            await record(conn, tenant_id, "endpoint.config.replace_lost", kind, value.row_id)
        return f"{kind}\t{value.row_id}\tdisabled: its destination config must be given again"
    plaintext = new_endpoint_secret() if kind == "endpoint" else token_urlsafe(32)
    fresh = keyring.seal(plaintext, Where(value.table_name, "secret", value.row_id))
    tenant_id = await sealed_secrets.replace_unreadable(conn, value, fresh)
    if tenant_id is not None:
        await record(conn, tenant_id, f"{kind}.secret.replace_lost", kind, value.row_id)
    if kind == "endpoint":
        return f"{kind}\t{value.row_id}\tnew secret: reveal it and give it to the receiver"
    return f"{kind}\t{value.row_id}\trefuses every request until its provider's secret is set"


ACTIONS["replace-lost"] = replace_lost
