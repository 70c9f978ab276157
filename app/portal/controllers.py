"""Routes under /v1/portal-links: expiring links to one customer's portal."""

from __future__ import annotations

from litestar import Request, post
from litestar.params import JSONBody

from app.api import ApiController
from app.dependencies import Caller, Transaction
from app.media import check_json_body
from app.openapi import error_responses
from app.portal import links
from app.portal.schemas import PortalLink, PortalLinkIn
from app.scopes import ENDPOINTS_MANAGE


class PortalLinkController(ApiController):
    """A SaaS hands each customer a portal for the endpoints of its channel."""

    path = "/v1/portal-links"
    tags = ["portal"]  # noqa: RUF012 - Litestar reads class attributes
    before_request = check_json_body
    opt = {"scope": ENDPOINTS_MANAGE}  # noqa: RUF012

    @post(
        "/",
        summary="Create a portal link for one channel",
        responses=error_responses(400, 401, 403, 415),
    )
    async def create_portal_link(
        self, data: JSONBody[PortalLinkIn], request: Request, conn: Transaction, caller: Caller
    ) -> PortalLink:
        base_url = str(request.base_url).rstrip("/")
        return await links.create(conn, caller, data, base_url)
