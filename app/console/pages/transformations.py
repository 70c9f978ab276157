"""Pages under /console/endpoints/{endpoint_id}/transformation: an endpoint's JavaScript
transformation, its editor with a test run on a sample event, and its versions. The sandbox
runs with no pool connection held (a slow handler holds nobody's connection)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from litestar import Controller, get, post
from litestar.response import Redirect, Template

from app.console import access
from app.console.base import CheckedForm, Session
from app.console.forms import Form
from app.console.rendering import go, render
from app.dependencies import Pool, Sandboxes
from app.endpoints.schemas import EndpointView
from app.errors import BadRequest
from app.identifiers import IdPath
from app.scopes import ENDPOINTS_MANAGE
from app.transformations import services
from app.transformations.schemas import EndpointTransformationTest
from core.transformations import MAX_CODE_BYTES

VERSIONS_SHOWN = 20
EXAMPLE = """function handler(webhook) {
  // webhook.payload is the body Eventgate would send; change it, webhook.headers,
  // webhook.method or webhook.url (same host), or set webhook.cancel = true.
  return webhook;
}"""
SAMPLE = '{\n  "invoice": "in_1",\n  "amount": 990\n}'


class TransformationPages(Controller):
    """One endpoint's transformation."""

    path = "/endpoints/{endpoint_id:str}/transformation"
    opt = {"scope": ENDPOINTS_MANAGE}  # noqa: RUF012

    @get("/", name="endpoint_transformation")
    async def show_transformation(
        self, session: Session, pool: Pool, endpoint_id: IdPath
    ) -> Template:
        return await _editor(pool, session, endpoint_id, {})

    @post("/", name="endpoint_transformation_save")
    async def save_transformation(
        self,
        session: Session,
        form: CheckedForm,
        pool: Pool,
        sandbox: Sandboxes,
        endpoint_id: IdPath,
    ) -> Redirect | Template:
        endpoint = await _endpoint(pool, session, endpoint_id)
        code = form.get("code", "").strip() or None
        tenant = session.principal.tenant_id
        try:
            await services.replace(pool, sandbox, tenant, "endpoint", endpoint.id, code)
        except BadRequest as refused:  # nothing was kept: the editor again, as it was typed
            return await _editor(pool, session, endpoint_id, form, code_error=_plain(refused))
        notice = "saved" if code is not None else "removed"
        return go(f"{session.base}/endpoints/{endpoint.id}/transformation?notice={notice}")

    @post("/test", name="endpoint_transformation_test")
    async def test_transformation(
        self,
        session: Session,
        form: CheckedForm,
        pool: Pool,
        sandbox: Sandboxes,
        endpoint_id: IdPath,
    ) -> Template:
        endpoint = await _endpoint(pool, session, endpoint_id)
        try:
            sample = _sample(form)
        except BadRequest as refused:
            return await _editor(pool, session, endpoint_id, form, code_error=refused.message)
        tenant = session.principal.tenant_id
        result = await services.test_endpoint(pool, sandbox, tenant, endpoint.id, sample)
        return await _editor(pool, session, endpoint_id, form, result=result)


async def _endpoint(pool: Pool, session: Session, endpoint_id: str) -> EndpointView:
    async with pool.connection() as conn:
        return await access.endpoint(conn, session, endpoint_id)


async def _editor(
    pool: Pool, session: Session, endpoint_id: str, typed: Form, **shown: Any
) -> Template:
    """The editor: what was typed (or the stored code), the versions, and a test's result or
    an error in plain words."""
    async with pool.connection() as conn:
        endpoint = await access.endpoint(conn, session, endpoint_id)
        tenant = session.principal.tenant_id
        current = await services.current(conn, tenant, "endpoint", endpoint.id)
        versions = await services.versions(
            conn, tenant, "endpoint", endpoint.id, None, VERSIONS_SHOWN
        )
    return render(
        session,
        "transformation.html",
        status=400 if shown.get("code_error") else 200,
        active="/endpoints",
        endpoint=endpoint,
        current=current,
        versions=versions.versions,
        code=typed.get("code", current.code or EXAMPLE),
        payload=typed.get("payload", SAMPLE),
        event_type=typed.get("event_type", "invoice.paid"),
        max_code=MAX_CODE_BYTES,
        **shown,
    )


def _sample(form: Form) -> EndpointTransformationTest:
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
    event_type = form.get("event_type") or "test.event"
    try:
        return msgspec.convert(
            {"payload": payload, "event_type": event_type, "code": code},
            EndpointTransformationTest,
        )
    except msgspec.ValidationError as exc:
        raise BadRequest(f"The sample is not valid: {exc}.") from None


def _plain(refused: BadRequest) -> str:
    line = (refused.details or {}).get("line") if isinstance(refused.details, dict) else None
    return refused.message + (f" (line {line})" if line else "")
