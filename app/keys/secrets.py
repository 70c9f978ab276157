"""The API key format eg_<prefix>_<secret>, and hashing of its secret with argon2id."""

from __future__ import annotations

import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

KEY_PATTERN = re.compile(r"eg_([0-9a-f]{16})_([A-Za-z0-9_\-]{43})")
_hasher = PasswordHasher()


def generate() -> tuple[str, str]:
    """A new (prefix, full key) pair; the full key is shown once and never stored."""
    prefix = secrets.token_hex(8)
    return prefix, f"eg_{prefix}_{secrets.token_urlsafe(32)}"


def prefix_of(key: str) -> str | None:
    """The prefix of a well-formed key, None for anything else."""
    match = KEY_PATTERN.fullmatch(key)
    return match.group(1) if match else None


def hash_key(key: str) -> str:
    """argon2id hash of the full key (slow on purpose: call it off the event loop)."""
    return _hasher.hash(key)


def verify_key(secret_hash: str, key: str) -> bool:
    """True when `key` matches the stored argon2 hash (slow: call it off the event loop)."""
    try:
        return _hasher.verify(secret_hash, key)
    except (VerificationError, InvalidHashError):
        return False
