"""ASGI entry point for servers started outside `eventgate` (uvicorn app.asgi:create --factory)."""

from __future__ import annotations

from litestar import Litestar

from app.main import create_app
from core import logs
from core.garbage import settle_garbage_collection
from core.settings import Settings


def create() -> Litestar:
    """The API configured from EVENTGATE_* environment variables (each server process of
    `eventgate serve --workers N` builds its own, logging included)."""
    settings = Settings.from_env()
    logs.configure(settings.log_format, settings.log_level, settings.log_redact_fields)
    app = create_app(settings)
    app.on_startup.append(settle_garbage_collection)
    return app
