"""The operator's tenant and key commands: direct database work, no API key needed."""

from __future__ import annotations

import argparse
import getpass
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import psycopg

from app.audit import acting_as_operator, record
from app.keys import services as keys
from app.keys.schemas import KeyView
from app.scopes import ALL_SCOPES
from app.views import to_view
from db import api_keys, audit, rate_limits, tenants


async def connect(url: str) -> psycopg.AsyncConnection:
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


def operator_name() -> str:
    """Who runs this command (its login name), as the audit log records it."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container with an unnamed uid)
        return "unknown"


async def tenant_named(conn: psycopg.AsyncConnection, name: str) -> tenants.Tenant:
    tenant = await tenants.get_by_name(conn, name)
    if tenant is None:
        sys.exit(f"no tenant named {name!r} (eventgate tenants create {name})")
    return tenant


async def create_tenant(url: str, args: argparse.Namespace) -> None:
    """Create a tenant, or report the existing one."""
    async with await connect(url) as conn:
        tenant, created = await tenants.create_or_get(conn, args.name)
    print(f"{'created' if created else 'exists'}\t{tenant.id}\t{tenant.name}")


async def list_tenants(url: str, args: argparse.Namespace) -> None:
    """Print every tenant: id, name, created."""
    async with await connect(url) as conn:
        for tenant in await tenants.list_all(conn):
            print(f"{tenant.id}\t{tenant.name}\t{tenant.created_at.isoformat()}")


async def create_key(url: str, args: argparse.Namespace) -> None:
    """Create a key; the full key goes to stdout (once), its id and scopes to stderr."""
    scopes = [s for chunk in args.scopes for s in chunk.split(",") if s]
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown or not scopes:
        sys.exit(f"unknown or missing scopes {unknown}; choose from {' '.join(ALL_SCOPES)}")
    acting_as_operator(operator_name())
    async with await connect(url) as conn, conn.transaction():
        tenant = await tenant_named(conn, args.tenant)
        key = await keys.issue(conn, tenant_id=tenant.id, name=args.name, scopes=scopes)
        await record(conn, tenant.id, "key.create", keys.KEY, key.id, after=to_view(key, KeyView))
    print(f"id={key.id} scopes={','.join(key.scopes)}", file=sys.stderr)
    print(f"EVENTGATE_API_KEY={key.key}")


async def list_keys(url: str, args: argparse.Namespace) -> None:
    """Print a tenant's keys: id, prefix, name, scopes, state."""
    async with await connect(url) as conn:
        tenant = await tenant_named(conn, args.tenant)
        after = None
        while page := await api_keys.list_page(conn, tenant.id, after, 100):
            for key in page:
                print(f"{key.id}\t{key.prefix}\t{key.name}\t{','.join(key.scopes)}\t{_state(key)}")
            after = page[-1].id


def _state(key: api_keys.ApiKey) -> str:
    """active, revoked, expired, or active with its expiry when it is within 7 days."""
    now = datetime.now(UTC)
    if key.revoked_at:
        return "revoked"
    if key.expires_at is None or key.expires_at - now > timedelta(days=7):
        return "active"
    if key.expires_at <= now:
        return "expired"
    return f"active (expires {key.expires_at:%Y-%m-%d %H:%M} UTC, within 7 days: rotate it)"


async def revoke_key(url: str, args: argparse.Namespace) -> None:
    """Revoke one of a tenant's keys; every API process forgets it within a second."""
    try:
        key_id = uuid.UUID(args.key_id)
    except ValueError:
        sys.exit(f"{args.key_id!r} is not a key id")
    acting_as_operator(operator_name())
    async with await connect(url) as conn, conn.transaction():
        tenant = await tenant_named(conn, args.tenant)
        revoked = await api_keys.revoke(conn, tenant.id, key_id)
        if revoked:
            view = to_view(revoked[0], KeyView)
            await record(conn, tenant.id, "key.revoke", keys.KEY, key_id, after=view)
    if not revoked:
        sys.exit(f"tenant {args.tenant!r} has no key {key_id}")
    for key in revoked:  # the key asked for, then the keys rotated from it
        print(f"revoked\t{key.id}\t{key.prefix}\t{key.name}")


async def set_tier(url: str, args: argparse.Namespace) -> None:
    """Create or change a tier (the operator may raise limits)."""
    tier = rate_limits.Tier(args.name, args.per_minute, args.per_hour, args.per_day, args.burst)
    async with await connect(url) as conn:
        saved = await rate_limits.set_tier(conn, tier)
    print(_tier_line(saved))


async def list_tiers(url: str, args: argparse.Namespace) -> None:
    """Print every tier: name, per minute, per hour, per day, burst ('-' is no limit)."""
    async with await connect(url) as conn:
        for tier in await rate_limits.list_tiers(conn):
            print(_tier_line(tier))


def _tier_line(tier: rate_limits.Tier) -> str:
    cells = (tier.per_minute, tier.per_hour, tier.per_day, tier.burst)
    return "\t".join([tier.name, *("-" if c is None else str(c) for c in cells)])


Action = Callable[[str, argparse.Namespace], Awaitable[None]]
TENANT_ACTIONS: dict[str, Action] = {"create": create_tenant, "list": list_tenants}
KEY_ACTIONS: dict[str, Action] = {"create": create_key, "list": list_keys, "revoke": revoke_key}
RATE_LIMIT_ACTIONS: dict[str, Action] = {"set-tier": set_tier, "list": list_tiers}


async def verify_audit(url: str, args: argparse.Namespace) -> None:
    """Recompute every audit chain (or one tenant's) up to its head, and check it still holds
    the saved heads of --expect-head; exit 1 naming the first broken row."""
    async with await connect(url) as conn:
        tenant_id = (await tenant_named(conn, args.tenant)).id if args.tenant else None
        checked, breaks = await audit.verify(conn, tenant_id)
        mismatches = await _saved_heads_mismatch(conn, args.expect_head) if args.expect_head else []
    for broken in breaks:
        print(
            f"broken\ttenant {broken.tenant_id}\tseq {broken.seq}\tid {broken.id}\t{broken.reason}"
        )
    for line in mismatches:
        print(line)
    if breaks or mismatches:
        sys.exit(f"the audit chain does not hold from the rows above ({checked} entries checked)")
    print(f"ok\t{checked} entries, every hash and link holds up to each head")


async def print_audit_heads(url: str, args: argparse.Namespace) -> None:
    """Print each tenant's chain head (name, seq, sha256 hex): keep it outside the database
    and check it later with `audit verify --expect-head`."""
    async with await connect(url) as conn:
        tenant_id = (await tenant_named(conn, args.tenant)).id if args.tenant else None
        for head in await audit.heads(conn, tenant_id):
            print(f"{head.tenant}\t{head.seq}\t{head.hash.hex()}")


def _read_heads(path: str) -> list[tuple[str, int, bytes]]:
    text = sys.stdin.read() if path == "-" else _read_file(path)
    saved = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            name, seq, digest = line.split("\t")
            saved.append((name, int(seq), bytes.fromhex(digest)))
        except ValueError:
            sys.exit(f"{path}:{number}: expected `tenant<TAB>seq<TAB>hash` as `audit head` prints")
    return saved


def _read_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as saved:
            return saved.read()
    except (OSError, UnicodeDecodeError) as exc:
        sys.exit(f"cannot read {path}: {exc}")


async def _saved_heads_mismatch(conn: psycopg.AsyncConnection, path: str) -> list[str]:
    """A line for each saved head the chain no longer holds (rewritten or cut short)."""
    mismatches = []
    for name, seq, digest in _read_heads(path):
        tenant = await tenant_named(conn, name)
        held = await audit.hash_at(conn, tenant.id, seq)
        if held == digest:
            continue
        if held is None and seq <= await audit.trimmed_up_to(conn, tenant.id):
            print(f"unchecked\ttenant {name}\tseq {seq}\tretention removed it", file=sys.stderr)
            continue
        found = "no such entry" if held is None else "another hash"
        mismatches.append(f"broken\ttenant {tenant.id}\tseq {seq}\tsaved head: {found}")
    return mismatches


AUDIT_ACTIONS: dict[str, Callable[[str, argparse.Namespace], Awaitable[None]]] = {
    "verify": verify_audit,
    "head": print_audit_heads,
}
