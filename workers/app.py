"""The procrastinate App: `procrastinate --app=workers.app.app worker` runs Eventgate's tasks."""

from __future__ import annotations

from typing import Any

from procrastinate import App, PsycopgConnector
from psycopg_pool import AsyncConnectionPool

from app.settings import Settings
from db.pool import use_msgspec_json, with_keepalives


def pool_from_settings(**pool_args: Any) -> AsyncConnectionPool:
    """Build the worker's pool when procrastinate opens the app (not at import time)."""
    settings = Settings.from_env()
    return AsyncConnectionPool(
        with_keepalives(settings.require_database_url()),
        min_size=1,
        max_size=settings.worker_concurrency + 4,
        configure=use_msgspec_json,
        **pool_args,
    )


app = App(
    connector=PsycopgConnector(pool_factory=pool_from_settings),
    import_paths=["workers.maintenance", "workers.delivery"],
    worker_defaults={
        # Finished jobs are deleted so the job table stays small and start-up fast.
        "delete_jobs": "successful",
        "shutdown_graceful_timeout": 30,
        "concurrency": 10,
    },
)
