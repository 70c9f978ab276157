"""Page /portal/{token}/: a portal opens on its endpoints."""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Redirect

from app.console.base import Session
from app.console.rendering import go


class PortalHome(Controller):
    """The portal's start."""

    path = "/"
    opt = {"scope": None}  # noqa: RUF012

    @get("/", name="portal_home")
    async def home(self, session: Session) -> Redirect:
        return go(f"{session.base}/endpoints")
