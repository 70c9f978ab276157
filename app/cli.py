"""The `eventgate` command: dev, serve, migrate, tenants and keys."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from app.settings import Settings


def _dev(args: argparse.Namespace) -> None:
    from app import dev

    dev.run(args.host, args.port, Path(args.data_dir))


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    Settings.from_env().require_database_url()
    uvicorn.run(
        "app.asgi:create",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,
    )


def _migrate(args: argparse.Namespace) -> None:
    from db import migrate

    url = Settings.from_env().require_database_url()
    if args.action == "apply":
        print("applied:", ", ".join(migrate.apply(url)) or "nothing pending")
    elif args.action == "rollback":
        count = None if args.all else args.count
        print("rolled back:", ", ".join(migrate.rollback(url, count)) or "nothing")
    else:
        for migration_id, applied in migrate.status(url):
            print(f"{'applied' if applied else 'pending'}\t{migration_id}")


async def _create_tenant(url: str, name: str) -> None:
    import psycopg

    from db import tenants

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        tenant, created = await tenants.create_or_get(conn, name)
    print(f"{'created' if created else 'exists'}\t{tenant.id}\t{tenant.name}")


async def _create_key(url: str, tenant_name: str, name: str, scopes: list[str]) -> None:
    import psycopg

    from app.keys import services
    from db import tenants

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        tenant = await tenants.get_by_name(conn, tenant_name)
        if tenant is None:
            sys.exit(f"no tenant named {tenant_name!r} (eventgate tenants create {tenant_name})")
        key = await services.issue(conn, tenant_id=tenant.id, name=name, scopes=scopes)
    print(f"id={key.id} scopes={','.join(key.scopes)}", file=sys.stderr)
    print(f"EVENTGATE_API_KEY={key.key}")


def _tenants(args: argparse.Namespace) -> None:
    asyncio.run(_create_tenant(Settings.from_env().require_database_url(), args.name))


def _keys(args: argparse.Namespace) -> None:
    from app.scopes import ALL_SCOPES

    scopes = [s for chunk in args.scopes for s in chunk.split(",") if s]
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown or not scopes:
        sys.exit(f"unknown or missing scopes {unknown}; choose from {' '.join(ALL_SCOPES)}")
    url = Settings.from_env().require_database_url()
    asyncio.run(_create_key(url, args.tenant, args.name, scopes))


def parser() -> argparse.ArgumentParser:
    """The command line of `eventgate`."""
    root = argparse.ArgumentParser(prog="eventgate", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="embedded Postgres + migrations + API + worker")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8080)
    dev.add_argument("--data-dir", default=".eventgate")
    dev.set_defaults(run=_dev)

    serve = commands.add_parser("serve", help="the API only (EVENTGATE_DATABASE_URL required)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser("migrate", help="apply, roll back or list migrations")
    migrate.add_argument("action", choices=["apply", "rollback", "status"])
    migrate.add_argument("--count", type=int, default=1, help="rollback: how many (default 1)")
    migrate.add_argument("--all", action="store_true", help="rollback: every migration")
    migrate.set_defaults(run=_migrate)

    tenants = commands.add_parser("tenants", help="manage tenants")
    tenant_actions = tenants.add_subparsers(dest="action", required=True)
    create_tenant = tenant_actions.add_parser("create", help="create a tenant")
    create_tenant.add_argument("name")
    create_tenant.set_defaults(run=_tenants)

    keys = commands.add_parser("keys", help="manage API keys")
    key_actions = keys.add_subparsers(dest="action", required=True)
    create_key = key_actions.add_parser("create", help="create a key (printed once)")
    create_key.add_argument("--tenant", required=True)
    create_key.add_argument("--name", required=True)
    create_key.add_argument(
        "--scopes", nargs="+", required=True, help="e.g. events:write,events:read"
    )
    create_key.set_defaults(run=_keys)
    return root


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `eventgate` console script."""
    args = parser().parse_args(argv)
    args.run(args)
