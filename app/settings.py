"""Eventgate's settings: one Struct read once from EVENTGATE_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

PREFIX = "EVENTGATE_"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every tunable of the API and the workers; environment names are EVENTGATE_<FIELD>."""

    database_url: str | None = None
    pool_min_size: int = 2
    pool_max_size: int = 20
    event_retention_days: int = 7
    partitions_ahead_days: int = 7
    key_cache_ttl_seconds: float = 60.0
    last_used_flush_seconds: float = 5.0
    worker_concurrency: int = 10

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from EVENTGATE_* variables (strings are coerced to the field types)."""
        environ = os.environ if environ is None else environ
        fields = set(cls.__struct_fields__)
        values = {
            name[len(PREFIX) :].lower(): value
            for name, value in environ.items()
            if name.startswith(PREFIX) and name[len(PREFIX) :].lower() in fields
        }
        return msgspec.convert(values, cls, strict=False)

    def require_database_url(self) -> str:
        """The database URL, or a clear error naming the variable to set."""
        if not self.database_url:
            raise SystemExit("EVENTGATE_DATABASE_URL is not set (eventgate dev starts its own)")
        return self.database_url
