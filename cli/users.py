"""`eventgate users`: console users made by the operator (the first admin of a tenant)."""

from __future__ import annotations

import argparse
import os
import sys

from app.audit import acting_as_operator
from app.console import people
from app.errors import BadRequest, Conflict
from cli.operator import connect, operator_name, tenant_named
from db import console_users

PASSWORD_VARIABLE = "EVENTGATE_USER_PASSWORD"


async def create_user(url: str, args: argparse.Namespace) -> None:
    """Create a user; its password is EVENTGATE_USER_PASSWORD, or generated and printed once."""
    role = "admin" if args.admin else args.role
    given = os.environ.get(PASSWORD_VARIABLE)
    password = given or people.new_password()
    try:
        email = people.email_of(args.email)
        password_hash = await people.hash_password(password)
    except BadRequest as refused:
        sys.exit(refused.message)
    acting_as_operator(operator_name())
    async with await connect(url) as conn, conn.transaction():
        tenant = await tenant_named(conn, args.tenant)
        try:
            user = await people.create_user(conn, tenant.id, email, password_hash, role)
        except Conflict as refused:
            sys.exit(refused.message)
    print(f"id={user.id} role={user.role}", file=sys.stderr)
    print(f"email={user.email}")
    if not given:
        print(f"password={password}")


async def list_users(url: str, args: argparse.Namespace) -> None:
    """Print the tenant's users: id, email, role, second factor, state."""
    async with await connect(url) as conn:
        tenant = await tenant_named(conn, args.tenant)
        for user in await console_users.list_users(conn, tenant.id):
            state = "disabled" if user.disabled_at else "active"
            totp = "totp" if user.totp_enabled else "-"
            print(f"{user.id}\t{user.email}\t{user.role}\t{totp}\t{state}")


ACTIONS = {"create": create_user, "list": list_users}
