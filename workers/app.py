"""The procrastinate App: `procrastinate --app=workers.app.app worker` runs Eventgate's
maintenance tasks and, beside them, the delivery engine (workers/engine.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any, Unpack

import psycopg
from procrastinate import App, PsycopgConnector, signals
from procrastinate.app import WorkerOptions
from procrastinate.worker import Worker
from prometheus_client import start_http_server
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from core import encryption, logs, tracing
from core.encryption import Keyring
from core.settings import Settings
from db import sealed_secrets
from db.pool import connection_kwargs, use_msgspec_json, with_keepalives
from workers.destinations import close_destinations
from workers.engine import DeliveryEngine

logger = logging.getLogger("eventgate.worker")

# How long a stopping worker lets its jobs and in-flight delivery batches finish.
GRACEFUL_SECONDS = 30.0


async def configure_connection(conn: psycopg.AsyncConnection) -> None:
    """Each new pooled connection: msgspec for JSON, and autocommit, so a lone statement
    commits by itself (no BEGIN/COMMIT round trips); transactions are explicit."""
    await use_msgspec_json(conn)
    await conn.set_autocommit(True)


def pool_from_settings(**pool_args: Any) -> AsyncConnectionPool:
    """Build the worker's pool when procrastinate opens the app (not at import time)."""
    settings = Settings.from_env()
    # procrastinate asks for a round trip before every checkout (a third of the delivery
    # engine's statements); a connection the database dropped fails once instead, which the
    # engine retries and the procrastinate worker restarts on.
    pool_args.pop("check", None)
    url = with_keepalives(settings.require_database_url())
    if settings.behind_pooler:
        # A transaction-mode pooler keeps no session: no prepared statements, and no startup
        # options (PgBouncer refuses those it does not know).
        conninfo, kwargs = url, connection_kwargs(prepared=False)
    else:
        # Plans are made once per connection and statement: the claim and record statements
        # join batches to partitioned tables, whose planning cost more than running them;
        # their partitions are pruned when each runs instead.
        conninfo, kwargs = make_conninfo(url, options="-c plan_cache_mode=force_generic_plan"), {}
    return AsyncConnectionPool(
        conninfo,
        min_size=1,
        max_size=settings.worker_concurrency + 4,
        configure=configure_connection,
        kwargs=kwargs,
        **pool_args,
    )


class EventgateApp(App):
    """procrastinate's App, whose worker also delivers and outlives a lost database.

    Every worker runs the delivery engine for the delivery queues it serves. procrastinate's
    worker stops for good when its connection to Postgres breaks (a restart, a failover) and
    the CLI then exits 0, which a supervisor need not restart. Run from the CLI (signal
    handlers on, waiting for jobs), this worker starts again after such a stop; only SIGINT
    or SIGTERM end it.
    """

    async def run_worker_async(self, **kwargs: Unpack[WorkerOptions]) -> None:
        """Run a worker until a signal stops it, starting it again if it stops by itself."""
        if not kwargs.get("install_signal_handlers", True) or not kwargs.get("wait", True):
            async with self.delivering(kwargs.get("queues")):
                await super().run_worker_async(**kwargs)
            return
        stopping = asyncio.Event()
        with signals.on_stop(stopping.set):
            await self.run_worker_until(stopping, **{**kwargs, "install_signal_handlers": False})

    @contextlib.asynccontextmanager
    async def delivering(self, queues: Iterable[str] | None) -> AsyncIterator[DeliveryEngine]:
        """The delivery engine of these queues (None: all), running inside the block and
        stopped gracefully (in-flight batches finish) when it ends."""
        settings = Settings.from_env()
        tracing.configure("eventgate-worker")  # when the OTEL_* environment asks for traces
        engine = DeliveryEngine(self.connector.pool, settings, _listed(queues))  # type: ignore[attr-defined]
        engine.start()
        try:
            yield engine
        finally:
            await asyncio.shield(engine.stop(GRACEFUL_SECONDS))

    async def run_worker_until(
        self, stopping: asyncio.Event, **kwargs: Unpack[WorkerOptions]
    ) -> None:
        """Run a worker until `stopping` is set (then gracefully), starting it again
        whenever it stops or fails by itself."""
        # Logging first: importing the tasks registers the periodic ones, which logs.
        settings = Settings.from_env()
        logs.configure(settings.log_format, settings.log_level, settings.log_redact_fields)
        await check_encryption_keys(settings)
        self.perform_import_paths()
        serve_metrics(settings.worker_metrics_port)
        try:
            async with self.delivering(kwargs.get("queues")) as engine:
                # Deliveries stop being claimed at the signal, while maintenance jobs finish.
                stopper = asyncio.create_task(_stop_engine_when_set(stopping, engine))
                try:
                    await self._run_until(stopping, **kwargs)
                finally:
                    stopper.cancel()
        finally:
            # Quietly, before the interpreter winds down (an unclosed aiohttp session would
            # be reported from a finalizer when modules are already gone).
            await close_destinations()

    async def _run_until(self, stopping: asyncio.Event, **kwargs: Unpack[WorkerOptions]) -> None:
        while not stopping.is_set():
            worker = self._worker(**kwargs)
            stopper = asyncio.create_task(_stop_when_set(stopping, worker))
            try:
                await worker.run()
            except Exception:
                logger.exception("the worker failed")
            finally:
                stopper.cancel()
            if not stopping.is_set():
                logger.warning("the worker stopped by itself; starting it again in 1 s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), 1.0)


_serving_metrics: list[int] = []


def serve_metrics(port: int) -> None:
    """Serve this worker's delivery metrics on `port` (once per process; 0 is off)."""
    if port and not _serving_metrics:
        start_http_server(port)
        _serving_metrics.append(port)
        logger.info("worker metrics on :%s/metrics", port)


async def check_encryption_keys(settings: Settings) -> None:
    """Stop at once (one line naming the setting) unless the keys open the stored secrets,
    rather than fail every delivery later."""
    keyring = Keyring.from_settings(settings)
    url = settings.require_database_url()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await sealed_secrets.check_keys(conn, keyring)
    encryption.install(keyring)


async def _stop_engine_when_set(stopping: asyncio.Event, engine: DeliveryEngine) -> None:
    await stopping.wait()
    await engine.stop(GRACEFUL_SECONDS)


def _listed(queues: Iterable[str] | None) -> list[str] | None:
    return None if queues is None else list(queues)


async def _stop_when_set(stopping: asyncio.Event, worker: Worker) -> None:
    await stopping.wait()
    worker.stop()


app = EventgateApp(
    connector=PsycopgConnector(pool_factory=pool_from_settings),
    import_paths=["workers.maintenance", "workers.schedules"],
    worker_defaults={
        # Finished jobs are deleted so the job table stays small and start-up fast.
        "delete_jobs": "successful",
        "shutdown_graceful_timeout": GRACEFUL_SECONDS,
        # Maintenance jobs only: deliveries run in the engine, EVENTGATE_WORKER_CONCURRENCY
        # batches per queue.
        "concurrency": 4,
        # Polled, not LISTENed for: Postgres wakes every listening backend of the database on
        # each NOTIFY, and ingest NOTIFYs the delivery engines on every event.
        "listen_notify": False,
        "fetch_job_polling_interval": 1.0,
    },
)
