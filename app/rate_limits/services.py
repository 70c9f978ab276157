"""Rate-limit rules: a tenant may only lower its limits through the API; the operator's CLI
may set anything."""

from __future__ import annotations

import uuid

from psycopg import AsyncConnection

from app.audit import record
from app.errors import BadRequest, Forbidden, NotFound
from app.rate_limits.schemas import KeyRateLimits, OverrideIn, TierList, TierView
from app.views import to_view, to_views
from db import api_keys, rate_limits
from db.rate_limits import Override, Tier

WINDOWS = ("per_minute", "per_hour", "per_day")


def _within(limit: int | None, ceiling: int | None) -> bool:
    # None is no limit: anything fits under it, and it fits under nothing but itself.
    return ceiling is None or (limit is not None and limit <= ceiling)


def tier_within(tier: Tier, ceiling: Tier) -> bool:
    """True when no window of `tier` allows more than the same window of `ceiling`."""
    return all(_within(getattr(tier, w), getattr(ceiling, w)) for w in (*WINDOWS, "burst"))


async def list_tiers(conn: AsyncConnection) -> TierList:
    """Every tier the operator defined."""
    return TierList(to_views(await rate_limits.list_tiers(conn), TierView))


async def _tiers(conn: AsyncConnection) -> dict[str, Tier]:
    return {t.name: t for t in await rate_limits.list_tiers(conn)}


async def check_tier(conn: AsyncConnection, wanted: str, ceiling: str) -> None:
    """BadRequest for an unknown tier; Forbidden for one that allows more than `ceiling`."""
    tiers = await _tiers(conn)
    if wanted not in tiers:
        raise BadRequest(f"no rate-limit tier `{wanted}`", {"field": "rate_limit_tier"})
    if ceiling in tiers and not tier_within(tiers[wanted], tiers[ceiling]):
        raise Forbidden(
            f"tier `{wanted}` allows more than `{ceiling}`; only the operator can raise limits",
            {"field": "rate_limit_tier"},
        )


async def get_for_key(
    conn: AsyncConnection, tenant_id: uuid.UUID, key_id: uuid.UUID
) -> KeyRateLimits:
    """A key's tier and route overrides, or NotFound."""
    key = await api_keys.get(conn, tenant_id, key_id)
    if key is None:
        raise NotFound("no such API key")
    overrides = await rate_limits.list_overrides(conn, tenant_id, key_id)
    return KeyRateLimits(key.id, key.rate_limit_tier, to_views(overrides, OverrideIn))


async def replace_for_key(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    key_id: uuid.UUID,
    overrides: list[OverrideIn],
    known_routes: set[str],
) -> KeyRateLimits:
    """Replace a key's route overrides; each must name a route and stay within the tier."""
    key = await api_keys.get(conn, tenant_id, key_id)
    if key is None:
        raise NotFound("no such API key")
    tier = (await _tiers(conn)).get(key.rate_limit_tier)
    routes = [o.route for o in overrides]
    if len(set(routes)) != len(routes):
        raise BadRequest("each route may appear once", {"field": "overrides"})
    for i, override in enumerate(overrides):
        if override.route not in known_routes:
            raise BadRequest(f"no route `{override.route}`", {"field": f"overrides[{i}].route"})
        for window in WINDOWS:
            limit = getattr(override, window)  # None: this window is not overridden
            if limit is not None and tier is not None and not _within(limit, getattr(tier, window)):
                raise Forbidden(
                    f"overrides[{i}].{window} is above the key's tier `{tier.name}`; "
                    "only the operator can raise limits",
                    {"field": f"overrides[{i}].{window}"},
                )
    before = await get_for_key(conn, tenant_id, key_id)
    replacement = [to_view(o, Override) for o in overrides]
    await rate_limits.replace_overrides(conn, tenant_id, key_id, replacement)
    after = await get_for_key(conn, tenant_id, key_id)
    await record(
        conn, tenant_id, "rate_limits.replace", "api_key", key_id, before=before, after=after
    )
    return after
