"""Transformation rules: code is checked in the sandbox before it is kept, every change is a
new version and an audit entry, and a test runs the handler on a sample without storing or
sending anything. No pool connection is held while the sandbox runs."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime

import msgspec
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from app.audit import record
from app.errors import BadRequest, NotFound
from app.pagination import Pagination, decode_name_cursor, encode_name_cursor
from app.transformations.schemas import (
    EndpointTransformationTest,
    SourceTransformationTest,
    TransformationTestResult,
    TransformationVersionList,
    TransformationVersionView,
    TransformationView,
)
from app.views import to_views
from core.event_body import event_body
from core.sandbox import Sandbox, Verdict
from core.transformations import (
    OwnerKind,
    Refused,
    endpoint_result,
    endpoint_webhook,
    source_result,
    source_webhook,
)
from db import endpoints, transformations
from db.ids import new_id

NO_SUCH = {"endpoint": "no endpoint with this id", "source": "no source with this id"}


async def current(
    conn: AsyncConnection, tenant_id: uuid.UUID, kind: OwnerKind, owner_id: uuid.UUID
) -> TransformationView:
    """The owner's transformation now; NotFound for another tenant's or a missing owner."""
    found = await transformations.current(conn, tenant_id, kind, owner_id)
    if found is None:
        raise NotFound(NO_SUCH[kind])
    return TransformationView(found.code, found.version)


async def replace(
    pool: AsyncConnectionPool,
    sandbox: Sandbox,
    tenant_id: uuid.UUID,
    kind: OwnerKind,
    owner_id: uuid.UUID,
    code: str | None,
) -> TransformationView:
    """Keep `code` (None: remove the transformation) as the owner's next version."""
    async with pool.connection() as conn:
        await current(conn, tenant_id, kind, owner_id)
    if code is not None:
        verdict = await sandbox.run(tenant_id, code, b"null", "check", check_only=True)
        if not verdict.ok:
            details = {"field": "code", "line": verdict.line}
            raise BadRequest(f"the code does not load: {verdict.error}", details)
    async with pool.connection() as conn, conn.transaction():
        before = await transformations.current(conn, tenant_id, kind, owner_id)
        changed = await transformations.set_code(conn, tenant_id, kind, owner_id, code)
        if before is None or changed is None:
            raise NotFound(NO_SUCH[kind])
        action = f"{kind}.transformation.{'updated' if code is not None else 'removed'}"
        await record(
            conn,
            tenant_id,
            action,
            kind,
            owner_id,
            before=_audited(before),
            after=_audited(changed),
        )
    return TransformationView(changed.code, changed.version)


def _audited(found: transformations.Current) -> dict[str, object]:
    """A version as the audit log keeps it: its number and the code's digest."""
    digest = hashlib.sha256(found.code.encode()).hexdigest() if found.code is not None else None
    return {"version": found.version, "code_sha256": digest}


async def versions(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    kind: OwnerKind,
    owner_id: uuid.UUID,
    cursor: str | None,
    limit: int,
) -> TransformationVersionList:
    """A page of the owner's versions, newest first."""
    await current(conn, tenant_id, kind, owner_id)
    before = decode_name_cursor(cursor)
    if before is not None and not (before.isdigit() and len(before) < 10):
        raise BadRequest("the cursor is not valid", {"field": "cursor"})
    start = int(before) if before is not None else 2**31 - 1
    rows = await transformations.versions(conn, tenant_id, kind, owner_id, start, limit + 1)
    page = to_views(rows[:limit], TransformationVersionView)
    following = encode_name_cursor(str(rows[limit - 1].version)) if len(rows) > limit else None
    return TransformationVersionList(page, Pagination(following, limit))


async def test_endpoint(
    pool: AsyncConnectionPool,
    sandbox: Sandbox,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    sample: EndpointTransformationTest,
) -> TransformationTestResult:
    """Run the endpoint's handler (or `sample.code`) on a sample event, sending nothing."""
    async with pool.connection() as conn:
        endpoint = await endpoints.get(conn, tenant_id, endpoint_id)
        stored = await current(conn, tenant_id, "endpoint", endpoint_id)
    if endpoint is None:
        raise NotFound(NO_SUCH["endpoint"])
    code = _code_to_test(sample.code, stored)
    event_id = new_id()
    now = datetime.now(UTC)
    body = event_body(event_id, "test", sample.event_type, sample.payload, {}, now)
    url = endpoint.url if endpoint.kind == "http" else None
    webhook = endpoint_webhook(body, str(event_id), sample.event_type, url)
    verdict = await sandbox.run(tenant_id, code, webhook, "test")
    if not verdict.ok or verdict.output is None:
        return _failed(verdict)
    try:
        shaped = endpoint_result(verdict.output, url)
    except Refused as exc:
        return TransformationTestResult(ok=False, error=str(exc))
    if shaped.cancelled:
        return TransformationTestResult(ok=True, cancelled=True)
    sent = {
        "method": shaped.method,
        "url": shaped.url or url,
        "headers": shaped.headers,
        "payload": msgspec.json.decode(shaped.body),
    }
    return TransformationTestResult(ok=True, result=sent)


async def test_source(
    pool: AsyncConnectionPool,
    sandbox: Sandbox,
    tenant_id: uuid.UUID,
    source_id: uuid.UUID,
    sample: SourceTransformationTest,
) -> TransformationTestResult:
    """Run the source's handler (or `sample.code`) on a sample request, storing nothing."""
    async with pool.connection() as conn:
        stored = await current(conn, tenant_id, "source", source_id)
    code = _code_to_test(sample.code, stored)
    headers = {name.lower(): value for name, value in sample.headers.items()}
    webhook = source_webhook(sample.payload, sample.event_type, headers)
    verdict = await sandbox.run(tenant_id, code, webhook, "test")
    if not verdict.ok or verdict.output is None:
        return _failed(verdict)
    try:
        result = source_result(verdict.output)
    except Refused as exc:
        return TransformationTestResult(ok=False, error=str(exc))
    if result.cancel:
        return TransformationTestResult(ok=True, cancelled=True)
    stored_event = {"event_type": result.event_type, "payload": result.payload}
    return TransformationTestResult(ok=True, result=stored_event)


def _code_to_test(given: str | None, stored: TransformationView) -> str:
    code = given if given is not None else stored.code
    if code is None:
        raise BadRequest("there is no transformation to test: send code", {"field": "code"})
    return code


def _failed(verdict: Verdict) -> TransformationTestResult:
    return TransformationTestResult(ok=False, error=verdict.error, line=verdict.line)
