"""ASGI entry point for servers started outside `eventgate` (uvicorn app.asgi:create --factory)."""

from __future__ import annotations

from litestar import Litestar

from app.main import create_app
from core.settings import Settings


def create() -> Litestar:
    """The API configured from EVENTGATE_* environment variables."""
    return create_app(Settings.from_env())
