"""The `eventgate` command: dev, serve, migrate, tenants, keys and users."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import uvloop

from core import logs
from core.settings import Settings
from core.vocabulary import CONSOLE_ROLES

if TYPE_CHECKING:
    import uvicorn

# `eventgate dev` writes its embedded database's URL here while it runs, so the operator's
# commands run in the same folder find it without EVENTGATE_DATABASE_URL.
DEV_DATABASE_URL_FILE = Path(".eventgate") / "database-url"


def _database_url() -> str:
    """The database an operator command works on: the direct address when the service goes
    through a transaction-mode pooler (a command keeps its session and its statements)."""
    settings = Settings.from_env()
    if not settings.database_url and DEV_DATABASE_URL_FILE.is_file():
        return DEV_DATABASE_URL_FILE.read_text().strip()
    return settings.session_database_url()


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text} is not above zero (omit it for no limit)")
    return number


def _dev(args: argparse.Namespace) -> None:
    from cli import dev

    dev.run(args.host, args.port, Path(args.data_dir))


def _check_encryption_keys(database_url: str) -> None:
    """Stop with one line naming the setting unless the keys open what is stored."""
    from cli import secrets

    asyncio.run(secrets.check(database_url))


def _serve(args: argparse.Namespace) -> None:
    from cli import serving

    _check_encryption_keys(_database_url())
    settings = Settings.from_env()
    logs.configure(settings.log_format, settings.log_level, settings.log_redact_fields)
    with contextlib.ExitStack() as made:
        if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Each process writes its metrics there; /metrics, answered by any, adds them up.
            # Removed when serving ends: a restart starts from zero, as one process would.
            metrics = tempfile.TemporaryDirectory(prefix="eventgate-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = made.enter_context(metrics)
        serving.serve(_uvicorn_config(args), settings.shutdown_drain_seconds)


def _uvicorn_config(args: argparse.Namespace) -> uvicorn.Config:
    """The API's server: Eventgate's own logs, headers and shutdown instead of uvicorn's."""
    import uvicorn

    return uvicorn.Config(
        "app.asgi:create",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,  # Eventgate logs each request itself (route, status, key prefix)
        log_config=None,  # keep the structured logging configured above
        # X-Forwarded-For is believed only from EVENTGATE_TRUSTED_PROXIES, by Eventgate itself.
        proxy_headers=False,
        server_header=False,  # no server banner
        # Open event streams never end by themselves: cut them then (clients resume by
        # Last-Event-ID) rather than wait for ever.
        timeout_graceful_shutdown=10,
    )


def _worker(args: argparse.Namespace) -> None:
    from core.garbage import settle_garbage_collection
    from core.queues import WORKER_QUEUES
    from workers.app import app

    _check_encryption_keys(_database_url())
    if args.metrics_port is not None:  # settings come from the environment, this one too
        os.environ["EVENTGATE_WORKER_METRICS_PORT"] = str(args.metrics_port)
    queues = [q for chunk in args.queues for q in chunk.split(",") if q] or None
    unknown = sorted(set(queues or ()) - set(WORKER_QUEUES))
    if unknown:
        raise SystemExit(f"unknown queues {unknown}; choose from {' '.join(WORKER_QUEUES)}")
    concurrency = args.concurrency or Settings.from_env().worker_concurrency
    # The delivery engine's batches per queue; it sizes the pool too.
    os.environ["EVENTGATE_WORKER_CONCURRENCY"] = str(concurrency)

    async def run() -> None:
        async with app.open_async():
            settle_garbage_collection()  # a worker process of its own from here on
            # Until SIGINT or SIGTERM (in-flight batches finish); restarted after a lost database.
            await app.run_worker_async(queues=queues)

    # uvloop, as uvicorn runs the API: every claim, send and record is a few socket reads and
    # writes, and its loop and transports cost a fraction of asyncio's own.
    uvloop.run(run())


def _migrate(args: argparse.Namespace) -> None:
    from db import migrate

    url = _database_url()  # migrations keep a session: never through a pooler
    if args.action == "apply":
        print("applied:", ", ".join(migrate.apply(url)) or "nothing pending")
    elif args.action == "rollback":
        count = None if args.all else args.count
        print("rolled back:", ", ".join(migrate.rollback(url, count)) or "nothing")
    else:
        for migration_id, applied in migrate.status(url):
            print(f"{'applied' if applied else 'pending'}\t{migration_id}")


def _tenants(args: argparse.Namespace) -> None:
    from cli import operator

    asyncio.run(operator.TENANT_ACTIONS[args.action](_database_url(), args))


def _keys(args: argparse.Namespace) -> None:
    from cli import operator

    asyncio.run(operator.KEY_ACTIONS[args.action](_database_url(), args))


def _rate_limits(args: argparse.Namespace) -> None:
    from cli import operator

    asyncio.run(operator.RATE_LIMIT_ACTIONS[args.action](_database_url(), args))


def _secrets(args: argparse.Namespace) -> None:
    from cli import secrets

    if args.action == "generate-key":
        secrets.generate_key()
        return
    asyncio.run(secrets.ACTIONS[args.action](_database_url(), args))


def _audit(args: argparse.Namespace) -> None:
    from cli import operator

    asyncio.run(operator.AUDIT_ACTIONS[args.action](_database_url(), args))


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every option's default."""


def _command(commands: argparse._SubParsersAction, name: str, text: str) -> argparse.ArgumentParser:
    return commands.add_parser(name, help=text, description=text, formatter_class=_Help)


def _add_dev_and_serve(commands: argparse._SubParsersAction) -> None:
    dev = _command(commands, "dev", "embedded Postgres + migrations + API + worker, one process")
    dev.add_argument("--host", default="127.0.0.1", help="address the API listens on")
    dev.add_argument("--port", type=int, default=8080, help="port the API listens on")
    dev.add_argument("--data-dir", default=".eventgate", help="where the embedded Postgres lives")
    dev.set_defaults(run=_dev)

    serve = _command(commands, "serve", "the API only (EVENTGATE_DATABASE_URL required)")
    serve.add_argument("--host", default="127.0.0.1", help="address the API listens on")
    serve.add_argument("--port", type=int, default=8080, help="port the API listens on")
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.set_defaults(run=_serve)

    worker = _command(commands, "worker", "a delivery and maintenance worker (JSON logs)")
    worker.add_argument(
        "--queues",
        nargs="*",
        default=[],
        help="queues to work (default: all), e.g. critical,default",
    )
    worker.add_argument(
        "--concurrency",
        type=_positive,
        default=None,
        help="jobs run at once (default: EVENTGATE_WORKER_CONCURRENCY)",
    )
    worker.add_argument(
        "--metrics-port", type=int, default=None, help="serve /metrics here (0: off)"
    )
    worker.set_defaults(run=_worker)

    migrate = _command(commands, "migrate", "apply, roll back or list migrations")
    migrate.add_argument("action", choices=["apply", "rollback", "status"], help="what to do")
    migrate.add_argument("--count", type=int, default=1, help="rollback: how many")
    migrate.add_argument("--all", action="store_true", help="rollback: every migration")
    migrate.set_defaults(run=_migrate)


def _add_tenants_and_keys(commands: argparse._SubParsersAction) -> None:
    tenants = _command(commands, "tenants", "manage tenants").add_subparsers(
        dest="action", required=True
    )
    create_tenant = _command(tenants, "create", "create a tenant (nothing if it exists)")
    create_tenant.add_argument("name", help="the tenant's unique name")
    _command(tenants, "list", "list every tenant")
    for action in tenants.choices.values():
        action.set_defaults(run=_tenants)

    keys = _command(commands, "keys", "manage API keys").add_subparsers(
        dest="action", required=True
    )
    create_key = _command(keys, "create", "create a key (printed once)")
    create_key.add_argument("--tenant", required=True, help="the tenant's name")
    create_key.add_argument("--name", required=True, help="what the key is for")
    create_key.add_argument(
        "--scopes", nargs="+", required=True, help="e.g. admin, or events:write,events:read"
    )
    list_keys = _command(keys, "list", "list a tenant's keys (never their secrets)")
    list_keys.add_argument("--tenant", required=True, help="the tenant's name")
    revoke_key = _command(keys, "revoke", "revoke a key at once, in every API process")
    revoke_key.add_argument("--tenant", required=True, help="the tenant's name")
    revoke_key.add_argument("key_id", help="the key's id, as `keys list` shows it")
    for action in keys.choices.values():
        action.set_defaults(run=_keys)

    limits = _command(commands, "rate-limits", "the API's rate-limit tiers").add_subparsers(
        dest="action", required=True
    )
    tier = _command(limits, "set-tier", "create or change a tier (omitted windows: no limit)")
    tier.add_argument("name", help="the tier's name, e.g. standard")
    for window in ("per-minute", "per-hour", "per-day", "burst"):
        tier.add_argument(f"--{window}", type=_positive, default=None, help=f"requests {window}")
    _command(limits, "list", "list the tiers ('-' is no limit)")
    for action in limits.choices.values():
        action.set_defaults(run=_rate_limits)
    audit = _command(commands, "audit", "the audit logs").add_subparsers(
        dest="action", required=True
    )
    verify = _command(audit, "verify", "recompute the hash chains; exit 1 at the first break")
    verify.add_argument("--tenant", default=None, help="only this tenant's chain")
    verify.add_argument(
        "--expect-head",
        default=None,
        metavar="FILE",
        help="heads saved from `audit head` (- for stdin) the chains must still hold",
    )
    _add_secrets(commands)
    _add_tasks(commands)
    head = _command(audit, "head", "print each chain's head (tenant, seq, hash) to keep elsewhere")
    head.add_argument("--tenant", default=None, help="only this tenant's head")
    for action in audit.choices.values():
        action.set_defaults(run=_audit)


def _users(args: argparse.Namespace) -> None:
    from cli import users

    asyncio.run(users.ACTIONS[args.action](_database_url(), args))


def _add_users(commands: argparse._SubParsersAction) -> None:
    users = _command(commands, "users", "manage console users").add_subparsers(
        dest="action", required=True
    )
    create = _command(users, "create", "create a console user (password printed once)")
    create.add_argument("--tenant", required=True, help="the tenant's name")
    create.add_argument("--email", required=True, help="what they sign in with")
    create.add_argument("--role", choices=CONSOLE_ROLES, default="viewer", help="what they may do")
    create.add_argument("--admin", action="store_true", help="the same as --role admin")
    listing = _command(users, "list", "list a tenant's console users")
    listing.add_argument("--tenant", required=True, help="the tenant's name")
    for action in users.choices.values():
        action.set_defaults(run=_users)


def _tasks(args: argparse.Namespace) -> None:
    from cli import tasks

    asyncio.run(tasks.ACTIONS[args.action](_database_url(), args))


def _add_tasks(commands: argparse._SubParsersAction) -> None:
    tasks = _command(commands, "tasks", "the periodic maintenance tasks")
    actions = tasks.add_subparsers(dest="action", required=True)
    _command(actions, "list", "each task's schedule, last run, outcome, duration and next run")
    history = _command(actions, "history", "the newest runs of one task")
    history.add_argument("name", help="the task, as `tasks list` names it")
    history.add_argument("--limit", type=_positive, default=20, help="how many runs")
    run = _command(actions, "run", "run a task now (refused while it runs or waits)")
    run.add_argument("name", help="the task, as `tasks list` names it")
    for action in actions.choices.values():
        action.set_defaults(run=_tasks)


def _add_secrets(commands: argparse._SubParsersAction) -> None:
    secrets = _command(commands, "secrets", "the keys stored secrets are encrypted under")
    actions = secrets.add_subparsers(dest="action", required=True)
    _command(actions, "generate-key", "print a new key for EVENTGATE_ENCRYPTION_KEYS")
    _command(actions, "status", "how many stored values each key id protects")
    rotate = _command(actions, "rotate", "re-encrypt every stored secret under the first key")
    rotate.add_argument("--batch", type=_positive, default=500, help="values per transaction")
    lost = _command(
        actions, "replace-lost", "after a key is lost: new secrets where it sealed the old ones"
    )
    lost.add_argument("--yes", action="store_true", help="replace them (otherwise only count)")
    for action in actions.choices.values():
        action.set_defaults(run=_secrets)


def parser() -> argparse.ArgumentParser:
    """The command line of `eventgate`."""
    root = argparse.ArgumentParser(prog="eventgate", description=__doc__, formatter_class=_Help)
    root.add_argument("--version", action="version", version=f"eventgate {version('eventgate')}")
    commands = root.add_subparsers(dest="command", required=True)
    _add_dev_and_serve(commands)
    _add_tenants_and_keys(commands)
    _add_users(commands)
    listen = _command(commands, "listen", "forward an Eventgate's events to a local URL, signed")
    _add_listen_arguments(listen)
    return root


def _add_listen_arguments(listen: argparse.ArgumentParser) -> None:
    env = os.environ.get
    listen.add_argument(
        "--url", default=env("EVENTGATE_URL", "http://127.0.0.1:8080"), help="the Eventgate"
    )
    # Never the key itself as a default: --help prints defaults.
    listen.add_argument("--key", default=None, help="a key with events:read, or EVENTGATE_API_KEY")
    listen.add_argument("--forward-to", required=True, help="e.g. http://localhost:3000/hook")
    listen.add_argument("--types", nargs="+", default=None, help="only these event types")
    listen.add_argument("--source", default=None, help="only events of this source")
    listen.add_argument("--channel", default=None, help="only events carrying this channel")
    listen.add_argument("--secret", default=None, help="sign with this whsec_ (None: a new one)")
    listen.add_argument(
        "--after", default=None, help="start after this stream id (None: with new events)"
    )
    listen.set_defaults(run=_listen)


def _listen(args: argparse.Namespace) -> None:
    from cli import listen

    listen.run(args)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `eventgate` console script."""
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except psycopg.Error as exc:
        # One clear line, never a traceback: what the database said about the input.
        message = exc.diag.message_primary or str(exc).strip().splitlines()[0]
        raise SystemExit(f"eventgate: {message}") from None
