"""Pages under /console/endpoints/{endpoint_id}/transformation and
/console/sources/{source_id}/transformation: a JavaScript transformation, its editor with a
test run on a sample, and its versions. The sandbox runs with no pool connection held (a slow
handler holds nobody's connection)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgspec
from litestar import Controller, get, post
from litestar.response import Redirect, Template

from app.console import access
from app.console.base import CheckedForm, Session
from app.console.forms import Form
from app.console.rendering import go, render
from app.dependencies import Pool, Sandboxes
from app.errors import BadRequest
from app.identifiers import IdPath, parse_id
from app.scopes import ENDPOINTS_MANAGE, SOURCES_MANAGE
from app.sources import services as sources
from app.transformations import services
from app.transformations.schemas import (
    EndpointTransformationTest,
    SourceTransformationTest,
    TransformationTestResult,
)
from core.transformations import MAX_CODE_BYTES, OwnerKind

VERSIONS_SHOWN = 20
EXAMPLES = {
    "endpoint": """function handler(webhook) {
  // webhook.payload is the body Eventgate would send; change it, webhook.headers,
  // webhook.method or webhook.url (same host), or set webhook.cancel = true.
  return webhook;
}""",
    "source": """function handler(webhook) {
  // webhook.payload is the provider's body; change it or webhook.event_type,
  // or set webhook.cancel = true to store nothing.
  return webhook;
}""",
}
SAMPLE = '{\n  "invoice": "in_1",\n  "amount": 990\n}'


class Owner(msgspec.Struct, frozen=True):
    """What a transformation belongs to, as its page shows it."""

    kind: OwnerKind
    id: uuid.UUID
    label: str
    page: str  # the owner's own page
    http: bool  # method and url may change


async def _endpoint(pool: Pool, session: Session, endpoint_id: str) -> Owner:
    async with pool.connection() as conn:
        endpoint = await access.endpoint(conn, session, endpoint_id)
    page = f"{session.base}/endpoints/{endpoint.id}"
    return Owner("endpoint", endpoint.id, endpoint.url, page, endpoint.kind == "http")


async def _source(pool: Pool, session: Session, source_id: str) -> Owner:
    async with pool.connection() as conn:
        source = await sources.get(conn, session.principal.tenant_id, parse_id(source_id, "id"))
    return Owner("source", source.id, source.name, f"{session.base}/sources/{source.id}", False)


class TransformationPages(Controller):
    """One endpoint's transformation."""

    path = "/endpoints/{endpoint_id:str}/transformation"
    opt = {"scope": ENDPOINTS_MANAGE}  # noqa: RUF012

    @get("/", name="endpoint_transformation")
    async def show_transformation(
        self, session: Session, pool: Pool, endpoint_id: IdPath
    ) -> Template:
        return await _editor(pool, session, await _endpoint(pool, session, endpoint_id), {})

    @post("/", name="endpoint_transformation_save")
    async def save_transformation(
        self,
        session: Session,
        form: CheckedForm,
        pool: Pool,
        sandbox: Sandboxes,
        endpoint_id: IdPath,
    ) -> Redirect | Template:
        owner = await _endpoint(pool, session, endpoint_id)
        return await _save(pool, sandbox, session, owner, form)

    @post("/test", name="endpoint_transformation_test")
    async def test_transformation(
        self,
        session: Session,
        form: CheckedForm,
        pool: Pool,
        sandbox: Sandboxes,
        endpoint_id: IdPath,
    ) -> Template:
        owner = await _endpoint(pool, session, endpoint_id)
        return await _test(pool, sandbox, session, owner, form)


class SourceTransformationPages(Controller):
    """One source's transformation."""

    path = "/sources/{source_id:str}/transformation"
    opt = {"scope": SOURCES_MANAGE}  # noqa: RUF012

    @get("/", name="source_transformation")
    async def show_source_transformation(
        self, session: Session, pool: Pool, source_id: IdPath
    ) -> Template:
        return await _editor(pool, session, await _source(pool, session, source_id), {})

    @post("/", name="source_transformation_save")
    async def save_source_transformation(
        self, session: Session, form: CheckedForm, pool: Pool, sandbox: Sandboxes, source_id: IdPath
    ) -> Redirect | Template:
        owner = await _source(pool, session, source_id)
        return await _save(pool, sandbox, session, owner, form)

    @post("/test", name="source_transformation_test")
    async def test_source_transformation(
        self, session: Session, form: CheckedForm, pool: Pool, sandbox: Sandboxes, source_id: IdPath
    ) -> Template:
        owner = await _source(pool, session, source_id)
        return await _test(pool, sandbox, session, owner, form)


async def _save(
    pool: Pool, sandbox: Sandboxes, session: Session, owner: Owner, form: Form
) -> Redirect | Template:
    """Keep the typed code as a new version (empty: remove), or the editor again as typed."""
    code = form.get("code", "").strip() or None
    tenant = session.principal.tenant_id
    try:
        await services.replace(pool, sandbox, tenant, owner.kind, owner.id, code)
    except BadRequest as refused:  # nothing was kept
        return await _editor(pool, session, owner, form, code_error=_plain(refused))
    notice = "saved" if code is not None else "removed"
    return go(f"{owner.page}/transformation?notice={notice}")


async def _test(
    pool: Pool, sandbox: Sandboxes, session: Session, owner: Owner, form: Form
) -> Template:
    """Run the typed code on the typed sample and show what it made of it."""
    try:
        sample = _sample(form, owner.kind)
    except BadRequest as refused:
        return await _editor(pool, session, owner, form, code_error=refused.message)
    tenant = session.principal.tenant_id
    result: TransformationTestResult
    if isinstance(sample, EndpointTransformationTest):
        result = await services.test_endpoint(pool, sandbox, tenant, owner.id, sample)
    else:
        result = await services.test_source(pool, sandbox, tenant, owner.id, sample)
    return await _editor(pool, session, owner, form, result=result)


async def _editor(
    pool: Pool, session: Session, owner: Owner, typed: Form, **shown: Any
) -> Template:
    """The editor: what was typed (or the stored code), the versions, and a test's result or
    an error in plain words."""
    tenant = session.principal.tenant_id
    async with pool.connection() as conn:
        current = await services.current(conn, tenant, owner.kind, owner.id)
        versions = await services.versions(conn, tenant, owner.kind, owner.id, None, VERSIONS_SHOWN)
    return render(
        session,
        "transformation.html",
        status=400 if shown.get("code_error") else 200,
        active=f"/{owner.kind}s",
        owner=owner,
        current=current,
        versions=versions.versions,
        code=typed.get("code", current.code or EXAMPLES[owner.kind]),
        payload=typed.get("payload", SAMPLE),
        event_type=typed.get("event_type", "invoice.paid"),
        max_code=MAX_CODE_BYTES,
        **shown,
    )


def _sample(form: Form, kind: OwnerKind) -> EndpointTransformationTest | SourceTransformationTest:
    """The test's sample from the form; BadRequest in plain words."""
    try:
        payload = json.loads(form.get("payload") or "{}")
    except ValueError as exc:
        raise BadRequest(f"The sample payload is not valid JSON: {exc}.") from None
    if not isinstance(payload, dict):
        raise BadRequest('The sample payload must be a JSON object, like {"amount": 990}.')
    code = form.get("code", "")
    if not 0 < len(code) <= MAX_CODE_BYTES:
        raise BadRequest(f"The code must be 1 to {MAX_CODE_BYTES} characters.")
    sample = {
        "payload": payload,
        "event_type": form.get("event_type") or "test.event",
        "code": code,
    }
    shape = EndpointTransformationTest if kind == "endpoint" else SourceTransformationTest
    try:
        return msgspec.convert(sample, shape)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"The sample is not valid: {exc}.") from None


def _plain(refused: BadRequest) -> str:
    line = (refused.details or {}).get("line") if isinstance(refused.details, dict) else None
    return refused.message + (f" (line {line})" if line else "")
