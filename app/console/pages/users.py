"""Pages under /console/users (admins): the tenant's people and their roles, invitations
by one-time link, disabling someone (their sessions end at once)."""

from __future__ import annotations

from litestar import Controller, Request, get, post
from litestar.response import Redirect, Template
from psycopg import AsyncConnection

from app.console import people
from app.console.base import CheckedForm, Session
from app.console.rendering import go, render
from app.console.sessions import ConsoleSession
from app.dependencies import AppSettings, Transaction
from app.errors import BadRequest
from app.identifiers import IdPath, parse_id
from app.scopes import ADMIN, ROLES

INVITATION_PATH = "/console/invitations"


async def users_page(
    conn: AsyncConnection,
    session: ConsoleSession,
    *,
    status: int = 200,
    error: str | None = None,
    link: str | None = None,
    typed: dict[str, str] | None = None,
) -> Template:
    """The people, the invitations, and the invite form (with what was typed, on an error)."""
    users, invitations = await people.people_of(conn, session.principal.tenant_id)
    return render(
        session,
        "users.html",
        status=status,
        active="/users",
        users=users,
        invitations=invitations,
        roles=ROLES,
        error=error,
        link=link,
        typed=typed or {},
    )


class UserPages(Controller):
    """The tenant's console users (admins only)."""

    path = "/users"
    opt = {"scope": ADMIN}  # noqa: RUF012

    @get("/", name="users")
    async def list_users(self, session: Session, conn: Transaction) -> Template:
        return await users_page(conn, session)

    @post("/invitations", name="user_invite")
    async def invite(
        self,
        request: Request,
        session: Session,
        form: CheckedForm,
        conn: Transaction,
        settings: AppSettings,
    ) -> Template:
        typed = {"email": form.get("email", "")[:254], "role": form.get("role", "")}
        try:
            email, role = people.email_of(typed["email"]), people.role_of(typed["role"])
        except BadRequest as refused:
            return await users_page(conn, session, status=400, error=refused.message, typed=typed)
        _, token = await people.invite(conn, session, email, role, settings)
        link = f"{request.base_url}".rstrip("/") + f"{INVITATION_PATH}/{token}"
        return await users_page(conn, session, link=link)

    @post("/{user_id:str}", name="user_update")
    async def update_user(
        self, session: Session, form: CheckedForm, conn: Transaction, user_id: IdPath
    ) -> Redirect:
        role = people.role_of(form["role"]) if form.get("role") else None
        disabled = {"disable": True, "enable": False}.get(form.get("action", ""))
        target = parse_id(user_id, "user_id")
        await people.change_user(conn, session, target, role=role, disabled=disabled)
        return go(f"{session.base}/users?notice=saved")
