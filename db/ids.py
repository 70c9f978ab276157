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


# The latest millisecond a datetime can hold: a UUIDv7's 48-bit time goes far beyond it.
_MAX_MILLIS = int(datetime.max.replace(tzinfo=UTC).timestamp() * 1000) - 1


def is_uuid7(id_: uuid.UUID) -> bool:
    """True when the id is a version-7 UUID whose time a datetime can hold (only those can be
    Eventgate ids and carry a usable timestamp)."""
    return id_.version == 7 and (id_.int >> 80) <= _MAX_MILLIS


def first_id_at(moment: datetime) -> uuid.UUID:
    """The lowest UUIDv7 of this millisecond: ids at or after it were created at or after it."""
    millis = max(0, int(moment.timestamp() * 1000))
    return uuid.UUID(int=(millis << 80) | (0x7 << 76) | (0x2 << 62))
