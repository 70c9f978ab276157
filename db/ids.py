"""UUIDv7 ids, and the creation time every id carries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from uuid_utils.compat import uuid7


def new_id() -> uuid.UUID:
    """A new time-ordered UUIDv7."""
    return uuid7()


def created_at_of(id_: uuid.UUID) -> datetime:
    """The millisecond timestamp in a UUIDv7, the created_at of the row it names."""
    millis = id_.int >> 80
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def is_uuid7(id_: uuid.UUID) -> bool:
    """True when the id is a version-7 UUID (only those carry a usable timestamp)."""
    return id_.version == 7
