"""Operational events raised by the delivery engine: an endpoint disabled, its circuit opened
or closed, a delivery dead-lettered (at most one per endpoint per window, with the count).

None is raised about an operational endpoint or by the delivery of an operational event: those
are caused by Eventgate's own notices, and reporting them could loop."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection

from core.vocabulary import RESERVED_TYPE_PREFIX
from db import operational
from db.delivery_queue import Claimed, Result
from db.endpoint_health import HealthChange


async def report_batch(
    conn: AsyncConnection,
    claimed: Sequence[Claimed],
    results: Sequence[Result],
    changes: Sequence[HealthChange],
    window_seconds: float,
) -> None:
    """Raise the batch's operational events in the transaction that records it."""
    for change in changes:
        if not change.operational:
            await _report_health(conn, change)
    by_id = {c.id: c for c in claimed}
    for result in results:
        c = by_id[result.id]
        if result.status == "dead" and not (c.event_type or "").startswith(RESERVED_TYPE_PREFIX):
            await operational.emit_throttled(
                conn,
                c.tenant_id,
                "delivery.dead_lettered",
                c.endpoint_id,
                _dead_letter(c, result),
                window_seconds,
                about=c.endpoint_id,
            )


async def _report_health(conn: AsyncConnection, change: HealthChange) -> None:
    about = change.endpoint_id
    endpoint = {"endpoint_id": str(about), "url": change.url, "kind": change.kind}
    if change.disabled:
        payload = {**endpoint, "reason": change.disabled_reason}
        await operational.emit(conn, change.tenant_id, "endpoint.disabled", payload, about)
    elif change.opened:
        retry_at = change.circuit_open_until.isoformat() if change.circuit_open_until else None
        payload = {
            **endpoint,
            "consecutive_failures": change.consecutive_failures,
            "retry_at": retry_at,
        }
        await operational.emit(conn, change.tenant_id, "endpoint.circuit_opened", payload, about)
    if change.closed:
        await operational.emit(conn, change.tenant_id, "endpoint.circuit_closed", endpoint, about)


def _dead_letter(c: Claimed, result: Result) -> dict[str, Any]:
    return {
        "endpoint_id": str(c.endpoint_id),
        "delivery_id": str(c.id),
        "event_id": str(c.event_id),
        "event_type": c.event_type,
        "attempts": result.attempt,
        "last_status_code": result.status_code,
        "last_error": result.error,
    }
