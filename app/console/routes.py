"""Every console and portal route, registered by app/main.py."""

from __future__ import annotations

from typing import Any

from app.console.pages.overview import OverviewPages
from app.console.pages.signin import SignInController, SignOutController
from app.console.rendering import STATIC_FILES

CONSOLE_ROUTES: list[Any] = [
    SignInController,
    SignOutController,
    OverviewPages,
    STATIC_FILES,
]
