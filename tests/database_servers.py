"""Real database plumbing from Debian's packages and PyPI, started on free loopback ports for a
test: PgBouncer in transaction mode in front of a Postgres server."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg

from tests.brokers import free_port
from tests.servers import as_service_user, binary, listening, service_folder, stop, wait_until


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
