"""Endpoint rules: destinations checked, secrets generated and rotated, pausing, recovery and
test sends."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection

from app.audit import record
from app.endpoints.destinations import check_config, stored_columns
from app.endpoints.filters import compile_filter
from app.endpoints.schemas import (
    EndpointCreated,
    EndpointIn,
    EndpointList,
    EndpointPatch,
    EndpointView,
    RotateSecretIn,
    SecretView,
)
from app.errors import BadRequest, Conflict, NotFound
from app.pagination import decode_cursor, page_of
from app.views import to_view, to_views
from core.destination_configs import KINDS, BrokerConfig, DestinationConfig
from core.destinations import RefusedDestination, check_destination, well_formed_url
from core.queues import QUEUE_OF_PRIORITY
from core.secrets import new_secret_for, scheme_of
from core.settings import Settings
from core.vocabulary import RESERVED_TYPE_PREFIX
from db import deliveries, endpoint_secrets, endpoints, events
from db.ids import new_id
from workers.enqueue import wake

SECRET_GRACE_SECONDS = 24 * 3600
ENDPOINT = "endpoint"
TEST_EVENT_TYPE = "eventgate.test"


async def check_address(
    url: str | None, config: DestinationConfig | None, settings: Settings
) -> str:
    """The url column of an endpoint with this url and config: an HTTP endpoint's url, or a
    broker's address without its password; BadRequest for anything that could not deliver."""
    if isinstance(config, BrokerConfig):
        if url is not None:
            raise BadRequest("a broker destination's address is config.url", {"field": "url"})
        return await check_config(config, settings)
    if url is None:
        raise BadRequest("an http destination needs a url", {"field": "url"})
    await check_url(url, settings.allow_private_destinations)
    if config is not None:
        await check_config(config, settings)
    return url


async def check_url(url: str, allow_private: bool) -> None:
    """BadRequest for a URL that is not http(s) or leads to a non-public address."""
    try:
        if allow_private:
            well_formed_url(url)
        else:
            await check_destination(url)
    except RefusedDestination as exc:
        raise BadRequest(f"url refused: {exc}", {"field": "url"}) from exc


def operational_types(operational: bool, event_types: list[str], channels: list[str]) -> list[str]:
    """The event types an endpoint subscribes to: an operational one only `eventgate.` types
    (all of them when none is named) and no channels; any other none of them."""
    reserved = [t for t in event_types if t.startswith(RESERVED_TYPE_PREFIX)]
    if not operational:
        if reserved:
            message = f"`{RESERVED_TYPE_PREFIX}` types go to operational endpoints only"
            raise BadRequest(message, {"field": "event_types"})
        return event_types
    if len(reserved) != len(event_types):
        message = f"an operational endpoint receives `{RESERVED_TYPE_PREFIX}` types only"
        raise BadRequest(message, {"field": "event_types"})
    if channels:
        message = "an operational endpoint takes no channels (its events carry none)"
        raise BadRequest(message, {"field": "channels"})
    return event_types or [RESERVED_TYPE_PREFIX + "*"]


def _compiled(spec: dict[str, Any] | None) -> dict[str, Any]:
    """The filter columns: as given, its jsonpath predicate and its bound values."""
    if spec is None:
        return {"filter": None, "filter_path": None, "filter_vars": None}
    path, values = compile_filter(spec)
    return {"filter": spec, "filter_path": path, "filter_vars": values}


def _found(row: endpoints.Endpoint | None) -> EndpointView:
    if row is None:
        raise NotFound("no such endpoint")
    return to_view(row, EndpointView)


async def create(
    conn: AsyncConnection, tenant_id: uuid.UUID, data: EndpointIn, settings: Settings
) -> EndpointCreated:
    """Create an endpoint with a fresh secret (shown in this answer)."""
    url = await check_address(data.url, data.config, settings)
    new = endpoints.NewEndpoint(
        id=new_id(),
        tenant_id=tenant_id,
        url=url,
        description=data.description,
        event_types=operational_types(data.operational, data.event_types, data.channels),
        channels=data.channels,
        **_compiled(data.filter),
        secret=new_secret_for(data.signature_scheme),
        rate_limit_per_s=data.rate_limit_per_s,
        ordered=data.ordered,
        operational=data.operational,
        metadata=data.metadata,
        **stored_columns(data.config),
    )
    view = to_view(await endpoints.insert(conn, new), EndpointView)
    await record(conn, tenant_id, "endpoint.create", ENDPOINT, view.id, after=view)
    return EndpointCreated(view, _shown(new.secret))


async def list_page(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    cursor: str | None,
    limit: int,
    channel: str | None = None,
    kind: str | None = None,
) -> EndpointList:
    """A page of the tenant's live endpoints (those with `channel` and of `kind`, when given),
    oldest first."""
    after = decode_cursor(cursor)
    if kind is not None and kind not in KINDS:
        raise BadRequest(f"kind must be one of {', '.join(KINDS)}", {"field": "kind"})
    if channel is not None:
        rows = await endpoints.list_in_channel(conn, tenant_id, channel, after, limit + 1, kind)
    elif kind is not None:
        rows = await endpoints.list_of_kind(conn, tenant_id, kind, after, limit + 1)
    else:
        rows = await endpoints.list_page(conn, tenant_id, after, limit + 1)
    page, pagination = page_of(rows, limit, lambda row: row.id)
    return EndpointList(to_views(page, EndpointView), pagination)


async def get(conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> EndpointView:
    """One live endpoint, or NotFound."""
    return _found(await endpoints.get(conn, tenant_id, endpoint_id))


async def update(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    data: EndpointPatch,
    settings: Settings,
) -> EndpointView:
    """Apply a PATCH (a new url or config is checked like a new endpoint's)."""
    given = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    if "filter" in given:
        given.update(_compiled(given["filter"]))
    before = await get(conn, tenant_id, endpoint_id)
    if {"operational", "event_types", "channels"} & set(given):
        subscription = {**msgspec.structs.asdict(before), **given}
        given["event_types"] = operational_types(
            subscription["operational"], subscription["event_types"], subscription["channels"]
        )
    if "url" in given or "config" in given:
        given.update(await _new_address(before, given, settings))
    changes = endpoints.EndpointChanges(given=list(given), **given)
    after = _found(await endpoints.update(conn, tenant_id, endpoint_id, changes))
    await record(
        conn, tenant_id, "endpoint.update", ENDPOINT, endpoint_id, before=before, after=after
    )
    return after


async def _new_address(
    before: EndpointView, given: dict[str, Any], settings: Settings
) -> dict[str, Any]:
    """The url and config columns of a PATCH, checked like a new endpoint's; the kind stays."""
    if "config" not in given:  # a new url for the same config
        if before.kind != "http":
            raise BadRequest("a broker destination's address is config.url", {"field": "url"})
        return {"url": await check_address(given["url"], None, settings)}
    config = given["config"]
    columns = stored_columns(config)
    if columns.pop("kind") != before.kind:
        raise BadRequest(
            f"an endpoint's kind stays {before.kind}: create a new endpoint for another kind",
            {"field": "config.kind"},
        )
    url = given.get("url", before.url if before.kind == "http" else None)
    return {"url": await check_address(url, config, settings), **columns}


async def delete(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> EndpointView:
    """Delete an endpoint (kept for history); its unfinished deliveries end dead."""
    before = _found(await endpoints.delete(conn, tenant_id, endpoint_id))
    await record(conn, tenant_id, "endpoint.delete", ENDPOINT, endpoint_id, before=before)
    return before


async def secrets(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> SecretView:
    """The signing secret, and the previous one while a rotation's grace lasts."""
    found = await endpoint_secrets.get_secrets(conn, tenant_id, endpoint_id)
    if found is None:
        raise NotFound("no such endpoint")
    await record(conn, tenant_id, "endpoint.secret.reveal", ENDPOINT, endpoint_id)
    return _receiver_view(found)


def _shown(secret: str | None) -> str | None:
    # A whsec_ secret is shared with the receiver; a whsk_ private key never leaves.
    return secret if secret is not None and scheme_of(secret) == "v1" else None


def _receiver_view(found: endpoint_secrets.Secrets) -> SecretView:
    """What the receiver verifies with: shared secrets and public keys, no private key."""
    return SecretView(
        _shown(found.secret),
        _shown(found.previous_secret),
        found.previous_secret_expires_at,
        found.public_key,
        found.previous_public_key,
    )


async def rotate_secret(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, wanted: RotateSecretIn
) -> SecretView:
    """Switch to a new secret (of the endpoint's scheme, or the one asked for); the old one
    keeps signing for 24 hours."""
    if wanted.secret is not None and wanted.signature_scheme == "v1a":
        raise BadRequest("a given secret is a whsec_ (v1) secret", {"field": "secret"})
    secret = wanted.secret
    if secret is None:
        scheme = (
            wanted.signature_scheme or (await get(conn, tenant_id, endpoint_id)).signature_scheme
        )
        secret = new_secret_for("v1a" if scheme == "v1a" else "v1")
    found = await endpoint_secrets.rotate_secret(
        conn, tenant_id, endpoint_id, secret, SECRET_GRACE_SECONDS
    )
    if found is None:
        raise NotFound("no such endpoint")
    await record(conn, tenant_id, "endpoint.secret.rotate", ENDPOINT, endpoint_id)
    return _receiver_view(found)


async def disable(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> EndpointView:
    """Pause an endpoint: its deliveries wait, nothing is dropped."""
    view = _found(await endpoints.disable(conn, tenant_id, endpoint_id, "disabled by API"))
    await record(conn, tenant_id, "endpoint.disable", ENDPOINT, endpoint_id, after=view)
    return view


async def enable(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> EndpointView:
    """Resume an endpoint: its waiting deliveries go now."""
    row = await endpoints.enable(conn, tenant_id, endpoint_id)
    view = _found(row)
    await wake(conn, row.queues if row else [])
    await record(conn, tenant_id, "endpoint.enable", ENDPOINT, endpoint_id, after=view)
    return view


async def recover(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, since: datetime
) -> int:
    """Send again every dead delivery of the endpoint created since `since`; how many."""
    await get(conn, tenant_id, endpoint_id)
    per_queue = await deliveries.recover(conn, tenant_id, endpoint_id, since)
    await wake(conn, per_queue)
    await record(conn, tenant_id, "endpoint.recover", ENDPOINT, endpoint_id)
    return sum(per_queue.values())


async def send_test(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> tuple[uuid.UUID, uuid.UUID]:
    """Store a test event (acknowledged, so not in the inbox) and a delivery of it to this
    endpoint only, and wake a worker; returns (event id, delivery id)."""
    row = await get(conn, tenant_id, endpoint_id)
    if not row.is_active:
        raise Conflict("the endpoint is disabled; enable it first")
    event = events.NewEvent(
        id=new_id(),
        tenant_id=tenant_id,
        source="eventgate",
        event_type=TEST_EVENT_TYPE,
        payload={"message": "a test event sent by Eventgate", "endpoint_id": str(endpoint_id)},
        metadata={"priority": "high"},
        idempotency_key=None,
        correlation_id=None,
        priority="high",
    )
    await events.insert_acknowledged(conn, event)
    queue = QUEUE_OF_PRIORITY["high"]
    delivery_id = await deliveries.insert_one(
        conn, tenant_id=tenant_id, event_id=event.id, endpoint_id=endpoint_id, queue=queue
    )
    await wake(conn, [queue])
    return event.id, delivery_id


async def matching(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    text: str,
    channel: str | None = None,
    limit: int = 20,
) -> list[uuid.UUID]:
    """Endpoints whose URL or description holds `text` (every one for ""), a console's filter."""
    return await endpoints.matching(conn, tenant_id, text, channel, limit)
