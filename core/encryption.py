"""Secrets at rest: every stored credential is AES-256-GCM ciphertext under the operator's keys.

A value is stored as `01 | key id (8 ASCII hex) | nonce (12) | ciphertext and tag`. The key id
is derived from the key itself, so several keys can be live at once and a value says which
one sealed it. The associated data binds the value to its table, column and row: a ciphertext
copied to another row or column does not open. Keys come from EVENTGATE_ENCRYPTION_KEYS (or
the file EVENTGATE_ENCRYPTION_KEYS_FILE names), never from the database: the first seals, all
open. Plaintext lives only in the memory of the process that signs or verifies, in a bounded
cache of opened values.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import time
import uuid
from collections.abc import Sequence
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.settings import Settings

FORMAT = b"\x01"
KEY_ID_LENGTH = 8
NONCE_LENGTH = 12
HEADER_LENGTH = len(FORMAT) + KEY_ID_LENGTH + NONCE_LENGTH
SETTING = "EVENTGATE_ENCRYPTION_KEYS"
# Opened values are remembered this long (and at most this many), so a hot path decrypts
# rarely while a plaintext does not linger for ever.
OPENED_SECONDS = 300.0
OPENED_AT_MOST = 50_000


class EncryptionKeyError(SystemExit):
    """The keys are missing or malformed: the process cannot start."""


class UndecryptableSecret(Exception):
    """A stored value that no live key opens: wrong key, another row's value, or damage."""


class Where(NamedTuple):
    """The table, column and row a value belongs to (its associated data)."""

    table: str
    column: str
    row_id: uuid.UUID

    def associated_data(self, key_id: bytes) -> bytes:
        """What the tag covers besides the plaintext."""
        return FORMAT + key_id + f"|{self.table}|{self.column}|{self.row_id}".encode()


def generate_key() -> str:
    """A new key, as EVENTGATE_ENCRYPTION_KEYS takes it: base64 of 32 random bytes."""
    return base64.b64encode(os.urandom(32)).decode()


def key_id_of(key: bytes) -> str:
    """The id a key is known by in stored values (not secret: a hash of the key)."""
    return hashlib.sha256(b"eventgate encryption key id\x00" + key).hexdigest()[:KEY_ID_LENGTH]


def key_id_in(blob: bytes) -> str:
    """The id of the key that sealed a stored value ('' for something else)."""
    if len(blob) < HEADER_LENGTH or blob[:1] != FORMAT:
        return ""
    return blob[1 : 1 + KEY_ID_LENGTH].decode("ascii", "replace")


class Keyring:
    """The operator's keys: the first seals, every one opens."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise EncryptionKeyError(f"{SETTING} holds no key")
        self._ciphers = {key_id_of(key).encode(): AESGCM(key) for key in keys}
        self._sealing = key_id_of(keys[0]).encode()
        self._opened: dict[bytes, tuple[float, str]] = {}

    @classmethod
    def parse(cls, text: str, origin: str = SETTING) -> Keyring:
        """Keys written base64, separated by commas, spaces or lines."""
        keys = []
        for word in text.replace(",", " ").split():
            try:
                key = base64.b64decode(word, validate=True)
            except binascii.Error:
                key = b""
            if len(key) != 32:
                raise EncryptionKeyError(
                    f"{origin}: every key must be base64 of 32 bytes"
                    " (`eventgate secrets generate-key` prints one)"
                )
            keys.append(key)
        return cls(keys)

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        """The keys of EVENTGATE_ENCRYPTION_KEYS, or of the file EVENTGATE_ENCRYPTION_KEYS_FILE."""
        if settings.encryption_keys_file:
            try:
                with open(settings.encryption_keys_file, encoding="ascii") as given:
                    text = given.read()
            except (OSError, UnicodeDecodeError) as exc:
                raise EncryptionKeyError(f"{SETTING}_FILE cannot be read: {exc}") from None
            return cls.parse(text, f"{SETTING}_FILE")
        if not settings.encryption_keys:
            raise EncryptionKeyError(
                f"{SETTING} is not set: stored secrets are encrypted under the operator's keys"
                " (`eventgate secrets generate-key` prints one; eventgate dev makes its own)"
            )
        return cls.parse(" ".join(settings.encryption_keys))

    @property
    def key_ids(self) -> list[str]:
        """Every live key id, the sealing one first."""
        return [self._sealing.decode(), *(k.decode() for k in self._ciphers if k != self._sealing)]

    @property
    def sealing_key_id(self) -> str:
        """The id of the key new values are sealed with."""
        return self._sealing.decode()

    def seal(self, plaintext: str, where: Where) -> bytes:
        """The stored form of `plaintext` at `where`, under the first key."""
        nonce = os.urandom(NONCE_LENGTH)
        cipher = self._ciphers[self._sealing]
        sealed = cipher.encrypt(nonce, plaintext.encode(), where.associated_data(self._sealing))
        return FORMAT + self._sealing + nonce + sealed

    def open(self, blob: bytes, where: Where) -> str:
        """The plaintext of a stored value; UndecryptableSecret when no live key opens it."""
        now = time.monotonic()
        cache_key = blob + where.associated_data(b"")
        opened = self._opened.get(cache_key)
        if opened is not None and opened[0] > now:
            return opened[1]
        plaintext = self._open(blob, where)
        if len(self._opened) >= OPENED_AT_MOST:
            self._opened = {k: v for k, v in self._opened.items() if v[0] > now}
            if len(self._opened) >= OPENED_AT_MOST:
                self._opened.clear()
        self._opened[cache_key] = (now + OPENED_SECONDS, plaintext)
        return plaintext

    def _open(self, blob: bytes, where: Where) -> str:
        key_id = key_id_in(blob).encode()
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UndecryptableSecret(
                f"{where.table}.{where.column} of {where.row_id} is sealed with key"
                f" {key_id.decode() or '(none)'}, which {SETTING} does not hold"
            )
        nonce = blob[1 + KEY_ID_LENGTH : HEADER_LENGTH]
        try:
            return cipher.decrypt(
                nonce, blob[HEADER_LENGTH:], where.associated_data(key_id)
            ).decode()
        except (InvalidTag, UnicodeDecodeError):
            raise UndecryptableSecret(
                f"{where.table}.{where.column} of {where.row_id} does not open under key"
                f" {key_id.decode()}: damaged, or another row's or column's value"
            ) from None

    def forget_opened(self) -> None:
        """Drop every remembered plaintext."""
        self._opened.clear()


_installed: list[Keyring] = []


def install(keyring: Keyring) -> None:
    """Make `keyring` this process's (the API's lifespan, a worker's start)."""
    _installed[:] = [keyring]


def keyring() -> Keyring:
    """This process's keyring: the installed one, or one read from the environment."""
    if not _installed:
        _installed.append(Keyring.from_settings(Settings.from_env()))
    return _installed[0]
