"""ASGI entry point for servers started outside `eventgate` (uvicorn app.asgi:create --factory)."""

from __future__ import annotations

import gc

from litestar import Litestar

from app.main import create_app
from core import logs
from core.settings import Settings

# Every request allocates a few hundred objects: with Python's default first-generation
# threshold (700) the collector runs every few requests, and its older generations walk the
# whole long-lived app. Under single-event ingest this cost about 7 % of the API process's CPU,
# and its full collections showed in the tail latency.
GC_FIRST_GENERATION_THRESHOLD = 20_000


def create() -> Litestar:
    """The API configured from EVENTGATE_* environment variables (each server process of
    `eventgate serve --workers N` builds its own, logging included)."""
    settings = Settings.from_env()
    logs.configure(settings.log_format, settings.log_level, settings.log_redact_fields)
    app = create_app(settings)
    app.on_startup.append(settle_garbage_collection)
    return app


def settle_garbage_collection() -> None:
    """Once the server process has started: what exists now (routes, pools, caches) is left out
    of later collections, and the first generation is collected less often. Only here, in a
    server process, never in a process that builds apps and drops them (tests)."""
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(GC_FIRST_GENERATION_THRESHOLD, second, third)
