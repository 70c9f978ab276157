"""Operational events: Eventgate's own events (types under the reserved `eventgate.` prefix),
stored like any event (acknowledged: they never enter the inbox) and delivered by the same
engine to the tenant's operational endpoints, never to the endpoint they are about."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from core.queues import DELIVERIES_DUE_CHANNEL, QUEUE_OF_PRIORITY
from core.vocabulary import RESERVED_TYPE_PREFIX
from db.ids import created_at_of, new_id
from db.query import fetch_tuples, fetch_value

# Store one operational event and a delivery to each of the tenant's operational endpoints
# subscribed to its type, except the one it is about; nothing when there is none; the
# queue is announced at COMMIT (endpoints_operational_idx, endpoints_subscription_idx).
EMIT = """
WITH targets AS (
    SELECT e.id, e.is_active FROM endpoints e
    WHERE e.tenant_id = %(tenant_id)s AND e.operational AND e.deleted_at IS NULL
      AND e.id IS DISTINCT FROM %(about)s
      AND e.subscription_keys && eventgate_event_keys(%(tenant_id)s, %(event_type)s, '{}')
), ev AS (
    INSERT INTO events (id, tenant_id, source, event_type, payload, metadata, priority, status,
                        acknowledged_at, created_at)
    SELECT %(id)s, %(tenant_id)s, 'eventgate', %(event_type)s, %(payload)s, '{}', 'high',
           'acknowledged', now(), %(created_at)s
    WHERE EXISTS (SELECT 1 FROM targets)
    RETURNING id, created_at
), fan_out AS (
    INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, queue, next_attempt_at,
                            created_at)
    SELECT eventgate_uuidv7(ev.created_at), %(tenant_id)s, ev.id, t.id, %(queue)s,
           CASE WHEN t.is_active THEN now() ELSE 'infinity' END, ev.created_at
    FROM ev CROSS JOIN targets t
    RETURNING next_attempt_at
)
SELECT (SELECT count(*) FROM fan_out) AS made,
       (SELECT count(*) FROM (SELECT pg_notify(%(channel)s, %(queue)s) FROM fan_out
                              WHERE next_attempt_at <= now() LIMIT 1) n) AS announced
"""

# Count one occurrence of a kind of notice about a subject; `due` when none was sent within
# the window, so this one goes, carrying the count (operational_notices_pkey; the row lock
# serialises concurrent occurrences).
NOTE = """
INSERT INTO operational_notices AS n (subject_id, kind, tenant_id, unreported)
VALUES (%(subject)s, %(kind)s, %(tenant_id)s, 1)
ON CONFLICT (tenant_id, subject_id, kind) DO UPDATE SET unreported = n.unreported + 1
RETURNING unreported,
          last_sent_at IS NULL OR last_sent_at <= now() - make_interval(secs => %(window)s)
"""

# A notice was sent: start counting again (operational_notices_pkey).
SENT = """
UPDATE operational_notices SET unreported = 0, last_sent_at = now()
WHERE tenant_id = %(tenant_id)s AND subject_id = %(subject)s AND kind = %(kind)s
"""

# Is there an operational endpoint to tell (endpoints_operational_idx)?
ANY_LISTENER = """
SELECT EXISTS (SELECT 1 FROM endpoints
               WHERE tenant_id = %(tenant_id)s AND operational AND deleted_at IS NULL)
"""

HIGH_QUEUE = QUEUE_OF_PRIORITY["high"]


async def emit(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    kind: str,
    payload: dict[str, Any],
    about: uuid.UUID | None = None,
) -> int:
    """Send `eventgate.<kind>` to the tenant's operational endpoints (except `about`), in
    the caller's transaction; returns how many deliveries it made."""
    event_id = new_id()
    params = {
        "id": event_id,
        "created_at": created_at_of(event_id),
        "tenant_id": tenant_id,
        "event_type": RESERVED_TYPE_PREFIX + kind,
        "payload": Jsonb(payload),
        "about": about,
        "queue": HIGH_QUEUE,
        "channel": DELIVERIES_DUE_CHANNEL,
    }
    rows = await fetch_tuples(conn, EMIT, params)
    return int(rows[0][0]) if rows else 0


async def emit_throttled(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    kind: str,
    subject: uuid.UUID,
    payload: dict[str, Any],
    window_seconds: float,
    about: uuid.UUID | None = None,
) -> bool:
    """Count an occurrence; send `eventgate.<kind>` with the count of occurrences since the
    last one when none was sent about this subject within the window. True when sent."""
    if not await fetch_value(conn, ANY_LISTENER, {"tenant_id": tenant_id}):
        return False
    params = {"subject": subject, "kind": kind, "tenant_id": tenant_id, "window": window_seconds}
    ((count, due),) = await fetch_tuples(conn, NOTE, params)
    if not due:
        return False
    await emit(conn, tenant_id, kind, {**payload, "count": count}, about)
    await conn.execute(SENT, params)
    return True
