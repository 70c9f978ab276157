"""Every console and portal route, registered by app/main.py: the same page controllers are
mounted under /console (a signed-in person or key, scope-checked) and, for endpoints and deliveries,
under /portal/{token} (one channel of one tenant)."""

from __future__ import annotations

from typing import Any

from app.console.base import pages_router
from app.console.pages.account import AccountPages
from app.console.pages.audit import AuditPages
from app.console.pages.deliveries import DeliveryPages
from app.console.pages.endpoints import EndpointPages
from app.console.pages.event_types import EventTypePages
from app.console.pages.events import EventPages
from app.console.pages.invitations import InvitationController
from app.console.pages.jobs import JobPages
from app.console.pages.keys import KeyPages
from app.console.pages.oidc import OidcSignInController
from app.console.pages.overview import OverviewPages
from app.console.pages.schedules import SchedulePages
from app.console.pages.signin import SignInController, SignOutPages
from app.console.pages.sources import SourcePages
from app.console.pages.transformations import SourceTransformationPages, TransformationPages
from app.console.pages.users import UserPages
from app.console.rendering import STATIC_FILES
from app.console.sessions import CONSOLE_PATH, console_session
from app.portal.links import PORTAL_PATH, portal_session
from app.portal.pages import PortalEventTypes, PortalHome

CONSOLE_PAGES: list[Any] = [
    OverviewPages,
    SignOutPages,
    EventPages,
    EndpointPages,
    TransformationPages,
    SourceTransformationPages,
    DeliveryPages,
    EventTypePages,
    SourcePages,
    SchedulePages,
    KeyPages,
    AuditPages,
    JobPages,
    UserPages,
    AccountPages,
]

# A portal shows one channel's endpoints and their deliveries, and the event-type catalogue.
PORTAL_PAGES: list[Any] = [PortalHome, EndpointPages, DeliveryPages, PortalEventTypes]

CONSOLE_ROUTES: list[Any] = [
    SignInController,
    OidcSignInController,
    InvitationController,
    pages_router(CONSOLE_PATH, CONSOLE_PAGES, console_session),
    pages_router(f"{PORTAL_PATH}/{{token:str}}", PORTAL_PAGES, portal_session),
    STATIC_FILES,
]
