"""Request and response bodies of POST /v1/portal-links."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from app.events.schemas import Channel

# A browser origin: scheme, host and optional port, nothing else (no path, no wildcard).
Origin = Annotated[
    str,
    msgspec.Meta(
        max_length=300,
        pattern=r"^https?://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:[0-9]{1,5})?$",
        description="The origin allowed to frame the portal: scheme, host and optional port",
    ),
]
Lifetime = Annotated[int, msgspec.Meta(ge=60, le=7 * 24 * 3600)]


class PortalLinkIn(msgspec.Struct, forbid_unknown_fields=True):
    """A portal for one customer: the endpoints carrying `channel`, framed by
    `allowed_origin`, for `expires_in_seconds` (60 s to 7 days)."""

    channel: Channel
    allowed_origin: Origin
    expires_in_seconds: Lifetime = 3600


class PortalLink(msgspec.Struct):
    """A portal link: open `url` (or embed it in an iframe on the allowed origin)."""

    id: uuid.UUID
    url: str
    channel: str
    allowed_origin: str
    expires_at: datetime
