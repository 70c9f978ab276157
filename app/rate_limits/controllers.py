"""Routes under /v1/rate-limit-tiers and /v1/keys/{key_id}/rate-limits."""

from __future__ import annotations

from litestar import Request, get, put
from litestar.params import JSONBody

from app.api import ApiController
from app.dependencies import Caller, Transaction
from app.identifiers import IdPath, parse_id
from app.media import check_json_body
from app.openapi import error_responses
from app.rate_limits import services
from app.rate_limits.admission import route_names
from app.rate_limits.schemas import KeyRateLimits, RateLimitsIn, TierList
from app.scopes import KEYS_MANAGE


class RateLimitTierController(ApiController):
    """The operator's tiers, readable by every key."""

    path = "/v1/rate-limit-tiers"
    tags = ["rate limits"]  # noqa: RUF012 - Litestar reads class attributes

    @get("/", summary="List the rate-limit tiers", responses=error_responses(401, 429))
    async def list_tiers(self, conn: Transaction) -> TierList:
        return await services.list_tiers(conn)


class KeyRateLimitController(ApiController):
    """A key's tier and per-route overrides (a tenant may only lower its limits)."""

    path = "/v1/keys/{key_id:str}/rate-limits"
    tags = ["rate limits"]  # noqa: RUF012
    before_request = check_json_body
    opt = {"scope": KEYS_MANAGE}  # noqa: RUF012

    @get("/", summary="Get a key's rate limits", responses=error_responses(400, 401, 403, 404, 429))
    async def get_rate_limits(
        self, key_id: IdPath, conn: Transaction, caller: Caller
    ) -> KeyRateLimits:
        return await services.get_for_key(conn, caller.tenant_id, parse_id(key_id, "key_id"))

    @put(
        "/",
        summary="Replace a key's per-route limits (only below its tier)",
        responses=error_responses(400, 401, 403, 404, 415, 429),
    )
    async def put_rate_limits(
        self,
        key_id: IdPath,
        data: JSONBody[RateLimitsIn],
        request: Request,
        conn: Transaction,
        caller: Caller,
    ) -> KeyRateLimits:
        # Every process (this one too) forgets the key's old overrides by NOTIFY, at COMMIT.
        routes = route_names(request.app)
        key_uuid = parse_id(key_id, "key_id")
        return await services.replace_for_key(
            conn, caller.tenant_id, key_uuid, data.overrides, routes
        )
