"""Source rules: one event-type rule, write-only secrets (generated unless the provider gives
them), rotatable trigger tokens, and the rejections a source's owner reads."""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from typing import Any

import msgspec
from psycopg import AsyncConnection

from app.audit import record
from app.errors import BadRequest, Conflict, NotFound
from app.pagination import decode_cursor, page_of
from app.sources.schemas import (
    NoVerification,
    RejectionList,
    RejectionView,
    Shopify,
    Slack,
    SourceCreated,
    SourceIn,
    SourceList,
    SourcePatch,
    SourceSecret,
    SourceView,
    StandardWebhooks,
    Stripe,
    Verification,
)
from app.views import to_views
from core.secrets import new_endpoint_secret
from db import sources
from db.ids import new_id

SOURCE = "source"
RULES = ("event_type", "event_type_header", "event_type_pointer")
# Headers that carry credentials: never copied into an event's metadata.
SECRET_HEADERS = {"authorization", "proxy-authorization", "cookie", "x-api-key"}
# Schemes whose secret the provider generates and shows: it cannot be made up here.
PROVIDER_SECRETS = (Stripe, Shopify, Slack)


def new_token() -> str:
    """A trigger token: 192 random bits."""
    return "src_" + secrets.token_urlsafe(24)


def _view(row: sources.Source) -> SourceView:
    fields = msgspec.structs.asdict(row)
    fields.pop("tenant_id")
    fields.pop("secret_encrypted", None)  # write-only: never part of a view
    fields.pop("transformation", None)  # its own route: /v1/sources/{id}/transformation
    token = fields.pop("token")
    return SourceView(trigger_path=f"/v1/triggers/{token}", **fields)


def _found(row: sources.Source | None) -> SourceView:
    if row is None:
        raise NotFound("no such source")
    return _view(row)


def _secret_for(scheme: Verification, given: str | None) -> str | None:
    """The secret to store: the given one (checked), or a generated one."""
    if isinstance(scheme, NoVerification):
        return None
    if isinstance(scheme, StandardWebhooks):
        if given is not None and not _is_whsec(given):
            raise BadRequest(
                "a standard-webhooks secret is whsec_ and at least 16 bytes in base64",
                {"field": "secret"},
            )
        return given or new_endpoint_secret()
    if given is None and isinstance(scheme, PROVIDER_SECRETS):
        raise BadRequest("give the signing secret the provider shows you", {"field": "secret"})
    return given if given is not None else secrets.token_hex(32)


def _is_whsec(secret: str) -> bool:
    try:
        return len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) >= 16 and (
            secret.startswith("whsec_")
        )
    except (binascii.Error, ValueError):
        return False


def _check_headers(names: list[str]) -> list[str]:
    lowered = [name.lower() for name in names]
    if refused := SECRET_HEADERS.intersection(lowered):
        raise BadRequest(
            f"{sorted(refused)[0]} carries credentials and cannot be kept",
            {"field": "keep_headers"},
        )
    return list(dict.fromkeys(lowered))


def _one_rule(values: dict[str, Any]) -> dict[str, Any]:
    given = {name: values.get(name) for name in RULES}
    if sum(value is not None for value in given.values()) != 1:
        raise BadRequest(
            "give exactly one of event_type, event_type_header, event_type_pointer",
            {"field": "event_type"},
        )
    return given


async def create(conn: AsyncConnection, tenant_id: uuid.UUID, data: SourceIn) -> SourceCreated:
    """Create a source with a fresh token; its secret is shown in this answer."""
    rules = _one_rule(msgspec.structs.asdict(data))
    secret = _secret_for(data.verification, data.secret)
    new = sources.NewSource(
        id=new_id(),
        tenant_id=tenant_id,
        name=data.name,
        token=new_token(),
        **rules,
        event_type_prefix=data.event_type_prefix,
        keep_headers=_check_headers(data.keep_headers),
        verification=msgspec.to_builtins(data.verification),
        secret=secret,
    )
    try:
        row = await sources.insert(conn, new)
    except sources.NameTaken:
        raise Conflict(f"a source named {data.name} exists", {"field": "name"}) from None
    view = _view(row)
    await record(conn, tenant_id, "source.create", SOURCE, view.id, after=view)
    return SourceCreated(view, secret)


async def list_page(
    conn: AsyncConnection, tenant_id: uuid.UUID, cursor: str | None, limit: int
) -> SourceList:
    """A page of the tenant's sources, oldest first."""
    rows = await sources.list_page(conn, tenant_id, decode_cursor(cursor), limit + 1)
    page, pagination = page_of(rows, limit, lambda row: row.id)
    return SourceList([_view(row) for row in page], pagination)


async def get(conn: AsyncConnection, tenant_id: uuid.UUID, source_id: uuid.UUID) -> SourceView:
    """One source of the tenant, or NotFound."""
    return _found(await sources.get(conn, tenant_id, source_id))


async def update(
    conn: AsyncConnection, tenant_id: uuid.UUID, source_id: uuid.UUID, data: SourcePatch
) -> SourceView:
    """Apply a PATCH; a new scheme keeps the secret unless one is given (or none is held)."""
    given = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    changes: dict[str, Any] = dict.fromkeys(msgspec.structs.asdict(data))  # all bound
    changes.update(given, given=list(given))
    if any(name in given for name in RULES):
        changes.update(_one_rule(given), given=[*given, "rule"])
    if "keep_headers" in given:
        changes["keep_headers"] = _check_headers(given["keep_headers"])
    current = await sources.get_with_secret(conn, tenant_id, source_id)
    if current is None:
        raise NotFound("no such source")
    if "verification" in given or "secret" in given:
        changes.update(_secret_change(current, given))
        changes["given"].append("secret")
    before = _view(current)
    try:
        after = _found(await sources.update(conn, tenant_id, source_id, changes))
    except sources.NameTaken:
        raise Conflict(f"a source named {given.get('name')} exists", {"field": "name"}) from None
    action = "source.secret.rotate" if "secret" in given else "source.update"
    await record(conn, tenant_id, action, SOURCE, source_id, before=before, after=after)
    return after


def _secret_change(current: sources.SourceWithSecret, given: dict[str, Any]) -> dict[str, Any]:
    """The verification and secret columns after a PATCH that names either."""
    scheme = given.get("verification") or msgspec.convert(current.verification, Verification)
    wanted = given.get("secret", current.secret)
    # A secret is kept across a change of scheme; a standard-webhooks one must look the part.
    keep = "secret" not in given and wanted is not None
    if keep and isinstance(scheme, StandardWebhooks) and not _is_whsec(wanted):
        keep = False
    secret = wanted if keep else _secret_for(scheme, given.get("secret"))
    return {"verification": msgspec.to_builtins(scheme), "secret": secret}


async def delete(conn: AsyncConnection, tenant_id: uuid.UUID, source_id: uuid.UUID) -> SourceView:
    """Delete a source: its trigger URL answers 404 from now on."""
    before = _found(await sources.delete(conn, tenant_id, source_id))
    await record(conn, tenant_id, "source.delete", SOURCE, source_id, before=before)
    return before


async def secret(conn: AsyncConnection, tenant_id: uuid.UUID, source_id: uuid.UUID) -> SourceSecret:
    """The secret the source verifies requests with."""
    found = await sources.get_with_secret(conn, tenant_id, source_id)
    if found is None:
        raise NotFound("no such source")
    await record(conn, tenant_id, "source.secret.reveal", SOURCE, source_id)
    return SourceSecret(found.secret)


async def rotate_token(
    conn: AsyncConnection, tenant_id: uuid.UUID, source_id: uuid.UUID
) -> SourceView:
    """A new trigger URL; the old one stops working at once."""
    view = _found(await sources.rotate_token(conn, tenant_id, source_id, new_token()))
    await record(conn, tenant_id, "source.token.rotate", SOURCE, source_id)
    return view


async def rejections(
    conn: AsyncConnection, tenant_id: uuid.UUID, source_id: uuid.UUID
) -> RejectionList:
    """The newest refused requests of a source, newest first."""
    await get(conn, tenant_id, source_id)
    rows = await sources.rejections(conn, tenant_id, source_id)
    return RejectionList(to_views(rows, RejectionView))
