"""SQL for the deliveries the API shows and acts on: reads, attempts, retry, recover, test sends.

The claim/lease engine that works the same table lives in db/delivery_queue.py.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection

from db.ids import created_at_of, is_uuid7
from db.query import fetch_all, fetch_one, fetch_tuples, fetch_value


class Delivery(msgspec.Struct):
    """One deliveries row."""

    id: uuid.UUID
    event_id: uuid.UUID
    endpoint_id: uuid.UUID
    queue: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: datetime | None
    deliver_at: datetime | None
    created_at: datetime
    updated_at: datetime


class Attempt(msgspec.Struct):
    """One delivery_attempts row."""

    id: uuid.UUID
    attempt: int
    status_code: int | None
    response_body: str | None
    latency_ms: int
    error: str | None
    started_at: datetime
    request_headers: dict[str, str] | None
    response_headers: dict[str, str] | None


COLUMNS = (
    "id, event_id, endpoint_id, queue, status, attempts,"
    " CASE WHEN next_attempt_at = 'infinity' THEN NULL ELSE next_attempt_at END AS next_attempt_at,"
    " last_status_code, last_error, last_attempt_at, deliver_at, created_at, updated_at"
)

# One delivery of a tenant; id and created_at prune to one partition (deliveries_pkey).
GET = f"""
SELECT {COLUMNS} FROM deliveries
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND created_at = %(created_at)s
"""

# A tenant's deliveries, newest first, before the cursor (deliveries_pkey's tenant_id, id).
LIST_PAGE = f"""
SELECT {COLUMNS} FROM deliveries
WHERE tenant_id = %(tenant_id)s
  AND (%(before)s::uuid IS NULL OR id < %(before)s)
  AND (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(endpoint_id)s::uuid IS NULL OR endpoint_id = %(endpoint_id)s)
  AND (%(endpoint_ids)s::uuid[] IS NULL OR endpoint_id = ANY(%(endpoint_ids)s))
  AND (%(event_id)s::uuid IS NULL OR event_id = %(event_id)s)
ORDER BY id DESC
LIMIT %(limit)s
"""

# What a list of deliveries shows beside each: its endpoint (description, else URL, else
# kind) and its event's type (endpoints_pkey; events_pkey per partition, the event's
# created_at being the delivery's).
LABELS = """
SELECT d.id, coalesce(nullif(ep.description, ''), ep.url, ep.kind) AS endpoint, e.event_type
FROM unnest(%(ids)s::uuid[], %(event_ids)s::uuid[], %(endpoint_ids)s::uuid[],
            %(created)s::timestamptz[]) AS d(id, event_id, endpoint_id, created_at)
LEFT JOIN endpoints ep ON ep.tenant_id = %(tenant_id)s AND ep.id = d.endpoint_id
LEFT JOIN events e ON e.tenant_id = %(tenant_id)s AND e.id = d.event_id
                  AND e.created_at = d.created_at
"""

# How each event's deliveries stand, counting at most 1,001 per event (an event fanned out to
# thousands of endpoints shows "1,000+"): the delivery's created_at is its event's, so each
# lookup prunes to one partition (deliveries_event_idx).
OUTCOMES = """
SELECT ev.id AS event_id, o.*
FROM unnest(%(ids)s::uuid[], %(created)s::timestamptz[]) AS ev(id, created_at)
CROSS JOIN LATERAL (
    SELECT count(*) AS total,
           count(*) FILTER (WHERE status IN ('succeeded', 'cancelled')) AS done,
           count(*) FILTER (WHERE status = 'failed') AS failing,
           count(*) FILTER (WHERE status = 'dead') AS dead
    FROM (SELECT status FROM deliveries
          WHERE tenant_id = %(tenant_id)s AND event_id = ev.id AND created_at = ev.created_at
          LIMIT 1001) AS sample
) AS o
"""

# Every try of one delivery, oldest first (delivery_attempts_delivery_idx).
ATTEMPTS = """
SELECT id, attempt, status_code, response_body, latency_ms, error, started_at,
       request_headers, response_headers
FROM delivery_attempts
WHERE tenant_id = %(tenant_id)s AND delivery_id = %(id)s AND created_at >= %(created_at)s
ORDER BY id
"""

# Send a dead or failed delivery again now, with the full retry schedule ahead (deliveries_pkey).
RETRY = f"""
UPDATE deliveries SET status = 'pending', retry_index = 0, next_attempt_at = now(), updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND created_at = %(created_at)s
  AND status IN ('dead', 'failed')
RETURNING {COLUMNS}
"""

# Send an endpoint's dead deliveries since a time again; counts per queue (deliveries_dead_idx).
RECOVER = """
WITH recovered AS (
    UPDATE deliveries SET status = 'pending', retry_index = 0, next_attempt_at = now(),
        updated_at = now()
    WHERE tenant_id = %(tenant_id)s AND endpoint_id = %(endpoint_id)s AND status = 'dead'
      AND created_at >= %(since)s
    RETURNING queue
)
SELECT queue, count(*) FROM recovered GROUP BY queue
"""

# Send again up to `limit` of the tenant's deliveries in one state (dead or failed), of the
# given endpoints, oldest first (picked once: a subquery re-run under SKIP LOCKED could pick
# others); rows a worker holds are skipped (deliveries_dead_idx for
# dead ones, deliveries_unfinished_idx for failed ones, one endpoint at a time).
RETRY_MATCHING = """
WITH picked AS MATERIALIZED (
    SELECT tenant_id, id, created_at FROM deliveries
    WHERE tenant_id = %(tenant_id)s AND endpoint_id = ANY(%(endpoint_ids)s)
      AND status = %(status)s
    ORDER BY id LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), retried AS (
    UPDATE deliveries d SET status = 'pending', retry_index = 0, next_attempt_at = now(),
        updated_at = now()
    FROM picked p
    WHERE d.tenant_id = p.tenant_id AND d.id = p.id AND d.created_at = p.created_at
    RETURNING d.queue
)
SELECT queue, count(*) FROM retried GROUP BY queue
"""

# Add one delivery of an existing event, for test sends (deliveries_pkey).
INSERT_ONE = """
INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, queue, created_at)
VALUES (eventgate_uuidv7(%(created_at)s), %(tenant_id)s, %(event_id)s, %(endpoint_id)s,
        %(queue)s, %(created_at)s)
RETURNING id
"""


def _key(tenant_id: uuid.UUID, delivery_id: uuid.UUID) -> dict[str, Any] | None:
    # Only UUIDv7 ids carry the created_at that finds the partition; no delivery has another.
    if not is_uuid7(delivery_id):
        return None
    return {"tenant_id": tenant_id, "id": delivery_id, "created_at": created_at_of(delivery_id)}


async def get(
    conn: AsyncConnection, tenant_id: uuid.UUID, delivery_id: uuid.UUID
) -> Delivery | None:
    """One delivery of the tenant."""
    params = _key(tenant_id, delivery_id)
    return None if params is None else await fetch_one(conn, GET, params, Delivery)


async def list_page(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    before: uuid.UUID | None,
    limit: int,
    status: str | None = None,
    endpoint_id: uuid.UUID | None = None,
    endpoint_ids: list[uuid.UUID] | None = None,
    event_id: uuid.UUID | None = None,
) -> list[Delivery]:
    """Up to `limit` deliveries of the tenant older than `before`, newest first."""
    params = {
        "tenant_id": tenant_id,
        "before": before,
        "limit": limit,
        "status": status,
        "endpoint_id": endpoint_id,
        "endpoint_ids": endpoint_ids,
        "event_id": event_id,
    }
    return await fetch_all(conn, LIST_PAGE, params, Delivery)


class Outcomes(msgspec.Struct):
    """How one event's deliveries stand."""

    event_id: uuid.UUID
    total: int
    done: int
    failing: int
    dead: int

    @property
    def state(self) -> str:
        """One word for the event's deliveries, worst first."""
        if self.total == 0:
            return "none"
        if self.dead:
            return "dead"
        if self.failing:
            return "failing"
        return "delivered" if self.done == self.total else "delivering"


async def outcomes(
    conn: AsyncConnection, tenant_id: uuid.UUID, events: list[Any]
) -> dict[uuid.UUID, Outcomes]:
    """How each event's deliveries stand, by event id."""
    params = {
        "tenant_id": tenant_id,
        "ids": [e.id for e in events],
        "created": [e.created_at for e in events],
    }
    return {o.event_id: o for o in await fetch_all(conn, OUTCOMES, params, Outcomes)}


class Label(msgspec.Struct):
    """What a list shows beside a delivery."""

    id: uuid.UUID
    endpoint: str | None
    event_type: str | None


async def labels(
    conn: AsyncConnection, tenant_id: uuid.UUID, rows: list[Any]
) -> dict[uuid.UUID, Label]:
    """Each delivery's endpoint and event type, by delivery id."""
    params = {
        "tenant_id": tenant_id,
        "ids": [r.id for r in rows],
        "event_ids": [r.event_id for r in rows],
        "endpoint_ids": [r.endpoint_id for r in rows],
        "created": [r.created_at for r in rows],
    }
    return {label.id: label for label in await fetch_all(conn, LABELS, params, Label)}


async def attempts(
    conn: AsyncConnection, tenant_id: uuid.UUID, delivery: Delivery
) -> list[Attempt]:
    """Every try of a delivery, oldest first."""
    params = {"tenant_id": tenant_id, "id": delivery.id, "created_at": delivery.created_at}
    return await fetch_all(conn, ATTEMPTS, params, Attempt)


async def retry(
    conn: AsyncConnection, tenant_id: uuid.UUID, delivery_id: uuid.UUID
) -> Delivery | None:
    """Make a dead or failed delivery due now; None when it is not in either state."""
    params = _key(tenant_id, delivery_id)
    return None if params is None else await fetch_one(conn, RETRY, params, Delivery)


async def recover(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, since: datetime
) -> dict[str, int]:
    """Make every dead delivery of the endpoint since `since` due now; counts per queue."""
    params = {"tenant_id": tenant_id, "endpoint_id": endpoint_id, "since": since}
    return {queue: n for queue, n in await fetch_tuples(conn, RECOVER, params)}


async def retry_matching(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    endpoint_ids: list[uuid.UUID],
    status: str,
    limit: int,
) -> dict[str, int]:
    """Make up to `limit` deliveries in `status` of these endpoints due now; counts per queue."""
    params = {
        "tenant_id": tenant_id,
        "endpoint_ids": endpoint_ids,
        "status": status,
        "limit": limit,
    }
    return {queue: n for queue, n in await fetch_tuples(conn, RETRY_MATCHING, params)}


async def insert_one(
    conn: AsyncConnection,
    *,
    tenant_id: uuid.UUID,
    event_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    queue: str,
) -> uuid.UUID:
    """Add one delivery of an existing event (used for test sends)."""
    params = {
        "tenant_id": tenant_id,
        "event_id": event_id,
        "endpoint_id": endpoint_id,
        "queue": queue,
        "created_at": created_at_of(event_id),
    }
    delivery_id: uuid.UUID = await fetch_value(conn, INSERT_ONE, params)
    return delivery_id
