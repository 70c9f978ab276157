"""The console overview's figures: one tenant's last hour, backlog, dead letters, endpoints."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import msgspec
from psycopg import AsyncConnection

from db import overview
from db.ids import first_id_at

MINUTES = 60


class Bar(msgspec.Struct):
    """One minute of the chart: counts, and bar heights out of 100."""

    minute: datetime
    events: int
    deliveries: int
    events_height: int
    deliveries_height: int


class Overview(msgspec.Struct):
    """Everything the overview page shows."""

    bars: list[Bar]
    events_last_hour: int
    deliveries_last_hour: int
    backlog: list[overview.QueueBacklog]
    endpoints: overview.EndpointStates
    dead_letters_capped: bool
    hour_capped: bool


def _bars(rows: list[overview.Minute], minutes: list[datetime]) -> list[Bar]:
    by_bucket = {row.bucket: row for row in rows}
    peak = max([1, *(max(row.events, row.deliveries) for row in rows)])
    bars = []
    for bucket, minute in enumerate(minutes, start=1):
        row = by_bucket.get(bucket, overview.Minute(bucket, 0, 0))
        heights = (round(100 * row.events / peak), round(100 * row.deliveries / peak))
        bars.append(Bar(minute, row.events, row.deliveries, *heights))
    return bars


async def tenant_overview(conn: AsyncConnection, tenant_id: uuid.UUID) -> Overview:
    """The tenant's figures now."""
    first = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=MINUTES - 1)
    minutes = [first + timedelta(minutes=i) for i in range(MINUTES)]
    rows = await overview.per_minute(conn, tenant_id, [first_id_at(m) for m in minutes])
    endpoints = await overview.endpoint_states(conn, tenant_id)
    events, deliveries = sum(r.events for r in rows), sum(r.deliveries for r in rows)
    return Overview(
        bars=_bars(rows, minutes),
        events_last_hour=events,
        deliveries_last_hour=deliveries,
        backlog=await overview.backlog(conn, tenant_id),
        endpoints=endpoints,
        dead_letters_capped=endpoints.dead_letters > overview.COUNT_CAP,
        hour_capped=max(events, deliveries) >= overview.HOUR_CAP,
    )
