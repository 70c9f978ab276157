"""Pages under /console/account: a person's own sign-in — the TOTP second factor, the
password, and the sessions open in their name (each can be ended)."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.response import Redirect, Template
from psycopg import AsyncConnection

from app.console import people
from app.console.base import CheckedForm, Session
from app.console.rendering import go, render
from app.console.sessions import ConsoleSession
from app.dependencies import Pool, Transaction
from app.errors import BadRequest
from app.identifiers import IdPath, parse_id


async def account_page(
    conn: AsyncConnection,
    session: ConsoleSession,
    *,
    status: int = 200,
    error: str | None = None,
    enrolling: str | None = None,
) -> Template:
    """The account page; while enrolling, the new secret and its otpauth URI."""
    user, sessions = await people.account_of(conn, session)
    uri = people.totp_uri(enrolling, session.principal.email or "") if enrolling else None
    return render(
        session,
        "account.html",
        status=status,
        active="/account",
        user=user,
        sessions=sessions,
        error=error,
        enrolling=enrolling,
        uri=uri,
    )


class AccountPages(Controller):
    """The signed-in person's own account."""

    path = "/account"
    opt = {"scope": None}  # noqa: RUF012 - everyone manages their own sign-in

    @get("/", name="account")
    async def show(self, session: Session, conn: Transaction) -> Template:
        return await account_page(conn, session)

    @post("/totp/start", name="account_totp_start")
    async def start_totp(self, session: Session, form: CheckedForm, conn: Transaction) -> Template:
        return await account_page(conn, session, enrolling=people.new_totp_secret())

    @post("/totp", name="account_totp_enable")
    async def enable_totp(
        self, session: Session, form: CheckedForm, conn: Transaction
    ) -> Redirect | Template:
        secret = form.get("secret", "")[:64]
        try:
            await people.enable_totp(conn, session, secret, form.get("code", ""))
        except BadRequest as refused:
            return await account_page(
                conn, session, status=400, error=refused.message, enrolling=secret
            )
        return go(f"{session.base}/account?notice=totp_on")

    @post("/totp/disable", name="account_totp_disable")
    async def disable_totp(
        self, session: Session, form: CheckedForm, conn: Transaction
    ) -> Redirect | Template:
        try:
            await people.disable_totp(conn, session, form.get("code", ""))
        except BadRequest as refused:
            return await account_page(conn, session, status=400, error=refused.message)
        return go(f"{session.base}/account?notice=totp_off")

    @post("/password", name="account_password")
    async def change_password(
        self, session: Session, form: CheckedForm, pool: Pool
    ) -> Redirect | Template:
        try:
            await people.change_password(
                pool, session, form.get("current", ""), form.get("new", "")
            )
        except BadRequest as refused:
            async with pool.connection() as conn:
                return await account_page(conn, session, status=400, error=refused.message)
        return go(f"{session.base}/account?notice=password_changed")

    @post("/sessions/{session_id:str}/revoke", name="account_session_revoke")
    async def revoke_session(
        self, session: Session, form: CheckedForm, conn: Transaction, session_id: IdPath
    ) -> Redirect:
        await people.revoke_session(conn, session, parse_id(session_id, "session_id"))
        return go(f"{session.base}/account?notice=session_ended")
