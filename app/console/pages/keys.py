"""Pages under /console/keys: the tenant's API keys; create, rotate and revoke (a new key is
shown once, on the page that answers the form)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from litestar import Controller, get, post
from litestar.params import QueryParameter
from litestar.response import Redirect, Template
from psycopg import AsyncConnection

from app.console.base import CheckedForm, Session
from app.console.forms import Form, optional, to_struct, whole_number
from app.console.rendering import go, render
from app.console.sessions import ConsoleSession
from app.dependencies import Pool, Transaction, Verifier
from app.identifiers import IdPath, parse_id
from app.keys import services
from app.keys.schemas import CreatedKey, CreateKeyRequest
from app.pagination import Cursor
from app.scopes import ALL_SCOPES, KEYS_MANAGE

PAGE_SIZE = 100
# Keys that expire this soon are flagged in the list (as the eventgate_api_keys_expiring metric).
EXPIRY_WARNING = timedelta(days=7)
MAX_GRACE_SECONDS = 7 * 24 * 3600
ShowRevoked = Annotated[bool, QueryParameter(description="List revoked keys too")]


def _new_key(form: Form) -> CreateKeyRequest:
    values = {
        "name": form.get("name", "").strip(),
        "scopes": [scope for scope in ALL_SCOPES if form.get(f"scope:{scope}") == "on"],
        "expires_at": optional(form.get("expires_at")),
    }
    if values["expires_at"] and len(values["expires_at"]) == 16:  # datetime-local: UTC
        values["expires_at"] += ":00Z"
    return to_struct(values, CreateKeyRequest)


async def _keys_page(
    conn: AsyncConnection,
    session: ConsoleSession,
    *,
    cursor: str | None = None,
    created: CreatedKey | None = None,
    revoked: bool = False,
) -> Template:
    """The key list (revoked keys only when asked); a just-created key shown once above it."""
    page = await services.list_page(conn, session.principal, cursor, PAGE_SIZE, revoked=revoked)
    now = datetime.now(UTC)
    return render(
        session,
        "keys.html",
        active="/keys",
        page=page,
        scopes=ALL_SCOPES,
        created=created,
        now=now,
        expiring_before=now + EXPIRY_WARNING,
        revoked=revoked,
    )


class KeyPages(Controller):
    """The tenant's keys."""

    path = "/keys"
    opt = {"scope": KEYS_MANAGE}  # noqa: RUF012

    @get("/", name="keys")
    async def list_keys(
        self,
        session: Session,
        conn: Transaction,
        cursor: Cursor = None,
        revoked: ShowRevoked = False,
    ) -> Template:
        return await _keys_page(conn, session, cursor=cursor, revoked=revoked)

    # Creating and rotating take the pool, not a transaction: the new key is hashed before
    # any connection is taken.
    @post("/", name="key_create")
    async def create_key(self, session: Session, form: CheckedForm, pool: Pool) -> Template:
        created = await services.create(pool, session.principal, _new_key(form))
        async with pool.connection() as conn:
            return await _keys_page(conn, session, created=created)

    @post("/{key_id:str}/rotate", name="key_rotate")
    async def rotate_key(
        self,
        session: Session,
        form: CheckedForm,
        pool: Pool,
        key_verifier: Verifier,
        key_id: IdPath,
    ) -> Template:
        grace = min(whole_number(form, "grace_seconds") or 0, MAX_GRACE_SECONDS)
        key_uuid = parse_id(key_id, "key_id")
        created = await services.rotate(pool, key_verifier, session.principal, key_uuid, grace)
        async with pool.connection() as conn:
            return await _keys_page(conn, session, created=created)

    @post("/{key_id:str}/revoke", name="key_revoke")
    async def revoke_key(
        self,
        session: Session,
        form: CheckedForm,
        conn: Transaction,
        key_verifier: Verifier,
        key_id: IdPath,
    ) -> Redirect:
        await services.revoke(conn, key_verifier, session.principal, parse_id(key_id, "key_id"))
        return go(f"{session.base}/keys?notice=revoked")
