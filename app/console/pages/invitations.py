"""Pages /console/invitations/{token}: a person invited by an admin chooses a password and is
signed in. A link works once, until it expires."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.params import Parameter
from litestar.response import Redirect, Template

from app.console import people
from app.console.forms import Form, checked_form
from app.console.pages.signin import SIGN_IN_SECONDS, open_signed_in, secure
from app.console.people import Invitation
from app.console.rendering import EXCEPTION_HANDLERS, render
from app.console.sessions import SIGN_IN_COOKIE, cookie, new_token
from app.console.user_sign_in import principal_of
from app.dependencies import Pool
from app.errors import BadRequest

INVITATIONS_PATH = "/console/invitations"
# The link's token (longer ones are refused unread).
TokenPath = Annotated[str, Parameter(max_length=100)]


class InvitationController(Controller):
    """Accepting an invitation (its CSRF token a double-submit cookie, as for sign-in)."""

    path = f"{INVITATIONS_PATH}/{{token:str}}"
    include_in_schema = False
    exception_handlers = EXCEPTION_HANDLERS

    @get("/", name="console_invitation")
    async def show(self, request: Request, pool: Pool, token: TokenPath) -> Template:
        async with pool.connection() as conn:
            invitation = await people.open_invitation(conn, token)
        csrf, age = new_token(), SIGN_IN_SECONDS
        page = _form(invitation, csrf)
        page.cookies.append(
            cookie(SIGN_IN_COOKIE, csrf, path=INVITATIONS_PATH, max_age=age, secure=secure(request))
        )
        return page

    # The password is hashed before any connection is taken; accepting the invitation and
    # adding the user are one transaction, so a link used twice at once adds one user.
    @post("/", name="console_invitation_accept")
    async def accept(self, request: Request, pool: Pool, token: TokenPath) -> Redirect | Template:
        csrf = request.cookies.get(SIGN_IN_COOKIE, "")
        form = await checked_form(request, csrf)
        async with pool.connection() as conn:
            invitation = await people.open_invitation(conn, token)
        try:
            password_hash = await _chosen_password(form)
        except BadRequest as refused:
            return _form(invitation, csrf, refused.message)
        async with pool.connection() as conn, conn.transaction():
            user = await people.accept(conn, invitation, password_hash)
        return await open_signed_in(request, principal_of(user))


async def _chosen_password(form: Form) -> str:
    """The argon2 hash of the password typed twice alike; BadRequest otherwise."""
    if form.get("password", "") != form.get("confirm", ""):
        raise BadRequest("the two passwords differ", {"field": "confirm"})
    return await people.hash_password(form.get("password", ""))


def _form(invitation: Invitation, csrf: str, error: str | None = None) -> Template:
    """The invitation's password form (again, with why, after a refusal)."""
    status = 400 if error else 200
    return render(
        None, "invitation.html", status=status, invitation=invitation, csrf_token=csrf, error=error
    )
