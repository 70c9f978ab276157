"""`eventgate secrets`: a new key, what each key protects, and re-encryption under the first."""

from __future__ import annotations

import argparse
import sys

import psycopg

from core.encryption import Keyring
from core.encryption import generate_key as new_key
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
