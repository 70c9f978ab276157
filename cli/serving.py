"""`eventgate serve`'s uvicorn server, which drains before it stops.

On SIGTERM or SIGINT it first marks the process draining (`/health/ready` answers 503) and goes
on serving for EVENTGATE_SHUTDOWN_DRAIN_SECONDS, so a load balancer's health check takes it out
of rotation while no request is refused; only then does uvicorn stop accepting, finish what is
in flight and exit. A second signal stops at once, as uvicorn's does. With several worker
processes (--workers), uvicorn's supervisor stops them without the drain.
"""

from __future__ import annotations

import sys
import threading
from types import FrameType

import uvicorn
from uvicorn.main import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from app.health import DRAINING


class DrainingServer(uvicorn.Server):
    """uvicorn's Server with a drain period before its graceful shutdown."""

    def __init__(self, config: uvicorn.Config, drain_seconds: float) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Drain first; a signal while draining (or with no drain) stops as uvicorn does."""
        if self.drain_seconds <= 0 or DRAINING.is_set():
            super().handle_exit(sig, frame)
            return
        DRAINING.set()
        stop = threading.Timer(self.drain_seconds, super().handle_exit, (sig, frame))
        stop.daemon = True
        stop.start()


def serve(config: uvicorn.Config, drain_seconds: float) -> None:
    """Run the API with `config`, draining on stop when it is one process (uvicorn's
    supervisor stops several worker processes at once)."""
    if config.workers > 1:
        sock = config.bind_socket()
        Multiprocess(config, sockets=[sock]).run()
        return
    config.load_app()
    server = DrainingServer(config, drain_seconds)
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
