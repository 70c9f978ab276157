"""Request and response bodies of the rate-limit routes."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec

Limit = Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)]
Route = Annotated[
    str, msgspec.Meta(max_length=300, pattern=r"^(GET|POST|PUT|PATCH|DELETE) /[A-Za-z0-9_{}/.-]*$")
]


class TierView(msgspec.Struct):
    """A tier: requests allowed per minute, hour, day and second (burst); null is no limit."""

    name: str
    per_minute: int | None
    per_hour: int | None
    per_day: int | None
    burst: int | None


class TierList(msgspec.Struct):
    """Every tier."""

    tiers: list[TierView]


class OverrideIn(msgspec.Struct, forbid_unknown_fields=True):
    """A key's own limits on one route (`POST /v1/events`), counted apart from the tier."""

    route: Route
    per_minute: Limit | None = None
    per_hour: Limit | None = None
    per_day: Limit | None = None


class RateLimitsIn(msgspec.Struct, forbid_unknown_fields=True):
    """The complete set of a key's route overrides (an empty list removes them)."""

    overrides: Annotated[list[OverrideIn], msgspec.Meta(max_length=100)]


class KeyRateLimits(msgspec.Struct):
    """A key's tier and route overrides."""

    key_id: uuid.UUID
    tier: str
    overrides: list[OverrideIn]
