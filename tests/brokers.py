"""Real message brokers from Debian's packages, each started on free loopback ports in a
throw-away folder and stopped after the test session: RabbitMQ, NATS with JetStream, Redis."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import msgspec

from tests.servers import binary, listening, stop, wait_until

PASSWORD = "broker-password-never-shown"


class Broker(msgspec.Struct):
    """A running broker: where it listens and the URL (with credentials) a tenant would give."""

    kind: str
    host: str
    port: int
    url: str

    @property
    def address(self) -> str:
        """host:port, as EVENTGATE_BROKER_HOSTS lists it."""
        return f"{self.host}:{self.port}"

    def url_with_password(self, password: str) -> str:
        """The URL with another password (a refused one)."""
        return self.url.replace(PASSWORD, password)


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running_redis() -> Iterator[Broker]:
    """redis-server with a password and no persistence."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="eventgate-redis-") as folder:
        command = [binary("redis-server"), "--port", str(port)]
        command += ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", folder]
        command += ["--requirepass", PASSWORD]
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            wait_until(lambda: listening(port), process, "redis-server")
            yield Broker("redis", "127.0.0.1", port, f"redis://:{PASSWORD}@127.0.0.1:{port}/0")
        finally:
            stop(process)


@contextlib.contextmanager
def running_nats() -> Iterator[Broker]:
    """nats-server with JetStream and a user."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="eventgate-nats-") as folder:
        command = [binary("nats-server", "/usr/sbin"), "-a", "127.0.0.1", "-p", str(port)]
        command += ["-js", "-sd", folder, "--user", "eventgate", "--pass", PASSWORD]
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            wait_until(lambda: listening(port), process, "nats-server")
            url = f"nats://eventgate:{PASSWORD}@127.0.0.1:{port}"
            yield Broker("nats", "127.0.0.1", port, url)
        finally:
            stop(process)


@contextlib.contextmanager
def running_rabbitmq() -> Iterator[Broker]:
    """rabbitmq-server as this user, its node, distribution and epmd ports all free ones; a
    user with a password (the default guest is left as it is)."""
    port, epmd_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="eventgate-rabbitmq-") as folder:
        base = Path(folder)
        (base / "enabled_plugins").write_text("[].")
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = {port}\n"
            "default_user = eventgate\n"
            f"default_pass = {PASSWORD}\n"
            "default_permissions.configure = .*\n"
            "default_permissions.read = .*\n"
            "default_permissions.write = .*\n"
        )
        env = {
            **os.environ,
            "HOME": folder,
            "RABBITMQ_NODENAME": f"eventgate{port}@localhost",
            "RABBITMQ_NODE_PORT": str(port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "ERL_EPMD_PORT": str(epmd_port),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),
            "RABBITMQ_LOGS": "-",
        }
        log = base / "out.log"
        # The server itself, not Debian's wrapper in /usr/sbin, which switches to its own user.
        server = binary("rabbitmq-server", "/usr/lib/rabbitmq/bin")
        with log.open("w") as out:
            process = subprocess.Popen(
                [server], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            wait_until(
                lambda: (
                    "Server startup complete" in log.read_text(errors="replace") and listening(port)
                ),
                process,
                "rabbitmq-server",
            )
            url = f"amqp://eventgate:{PASSWORD}@127.0.0.1:{port}/"
            yield Broker("rabbitmq", "127.0.0.1", port, url)
        finally:
            stop(process)
            # epmd, started by the node, runs detached: stop it through its own port.
            epmd = shutil.which("epmd", path="/usr/lib/erlang/bin:/usr/bin") or "epmd"
            subprocess.run(
                [epmd, "-port", str(epmd_port), "-kill"],
                capture_output=True,
                check=False,
                timeout=10,
            )
