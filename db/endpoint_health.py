"""SQL for the circuit-breaker columns of endpoints: probes and the outcome of each batch."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import msgspec
from psycopg import AsyncConnection

from db.query import fetch_all, fetch_tuples, jsonb_rows


class BatchHealth(msgspec.Struct):
    """What one sent batch says about one endpoint."""

    tenant_id: uuid.UUID
    endpoint_id: uuid.UUID
    succeeded: bool  # some try succeeded
    failures: int  # failures after the last success in the batch
    gone: bool  # some try answered 410 Gone


class HealthChange(msgspec.Struct):
    """An endpoint's state after a batch (disabled, or its circuit open until a time), and
    what changed: its circuit opened or closed, or it was disabled by this batch."""

    endpoint_id: uuid.UUID
    is_active: bool
    circuit_open_until: datetime | None
    tenant_id: uuid.UUID
    url: str
    kind: str
    operational: bool
    consecutive_failures: int
    disabled_reason: str | None
    opened: bool
    closed: bool
    disabled: bool

    @property
    def held(self) -> bool:
        """Its waiting deliveries must be held back (disabled, or its circuit open)."""
        return not self.is_active or self.circuit_open_until is not None


# Take the one probe of half-open endpoints across all workers: the row lock serialises
# claimers and the re-checked condition lets only the first through (endpoints_pkey).
TAKE_PROBES = """
UPDATE endpoints e SET circuit_open_until = now() + make_interval(secs => %(lease)s)
FROM unnest(%(tenant_ids)s::uuid[], %(ids)s::uuid[]) AS p(tenant_id, id)
WHERE e.tenant_id = p.tenant_id AND e.id = p.id
  AND (e.circuit_open_until IS NULL OR e.circuit_open_until <= now())
RETURNING e.id
"""

# Fold a batch's outcomes into each endpoint's circuit breaker; a 410 Gone or failing past
# the limit disables. A healthy endpoint that stays healthy is not written (endpoints_pkey).
RECORD_BATCH = """
WITH h AS (
    SELECT * FROM jsonb_to_recordset(%(health)s::jsonb)
        AS h(tenant_id uuid, endpoint_id uuid, succeeded bool, failures int, gone bool)
), next AS (
    SELECT e.tenant_id, e.id,
           CASE WHEN h.succeeded THEN 0 ELSE e.consecutive_failures END + h.failures AS failures,
           CASE WHEN h.failures = 0 THEN NULL ELSE COALESCE(
               CASE WHEN h.succeeded THEN NULL ELSE e.failing_since END, now()) END AS failing_since,
           h.gone, e.consecutive_failures >= %(threshold)s AS was_open, e.is_active AS was_active
    FROM endpoints e JOIN h ON h.tenant_id = e.tenant_id AND h.endpoint_id = e.id
)
UPDATE endpoints e SET
    consecutive_failures = n.failures,
    failing_since = n.failing_since,
    circuit_open_until = CASE WHEN n.failures >= %(threshold)s
                              THEN now() + make_interval(secs => %(cooldown)s) END,
    is_active = e.is_active AND NOT n.gone
        AND NOT COALESCE(n.failing_since < now() - make_interval(secs => %(disable_after)s), false),
    disabled_reason = CASE
        WHEN n.gone THEN 'the endpoint answered 410 Gone'
        WHEN n.failing_since < now() - make_interval(secs => %(disable_after)s)
            THEN 'failing continuously since ' || n.failing_since::text
        ELSE e.disabled_reason END,
    updated_at = now()
FROM next n
WHERE e.tenant_id = n.tenant_id AND e.id = n.id
  AND (n.failures > 0 OR e.consecutive_failures > 0 OR e.failing_since IS NOT NULL
       OR e.circuit_open_until IS NOT NULL)
RETURNING e.id AS endpoint_id, e.is_active, e.circuit_open_until, e.tenant_id, e.url, e.kind,
          e.operational, e.consecutive_failures, e.disabled_reason,
          NOT n.was_open AND n.failures >= %(threshold)s AS opened,
          n.was_open AND n.failures < %(threshold)s AS closed,
          n.was_active AND NOT e.is_active AS disabled
"""


async def take_probes(
    conn: AsyncConnection,
    endpoints: Sequence[tuple[uuid.UUID, uuid.UUID]],
    lease_seconds: float,
) -> set[uuid.UUID]:
    """Of these half-open endpoints (tenant_id, endpoint_id), those this claim may probe."""
    params = {
        "tenant_ids": [t for t, _ in endpoints],
        "ids": [e for _, e in endpoints],
        "lease": lease_seconds,
    }
    rows = await fetch_tuples(conn, TAKE_PROBES, params)
    return {row[0] for row in rows}


async def record_batch(
    conn: AsyncConnection,
    health: Sequence[BatchHealth],
    *,
    threshold: int,
    cooldown_seconds: float,
    disable_after_seconds: float,
) -> list[HealthChange]:
    """Apply a batch's outcomes; returns every endpoint whose health columns changed."""
    if not health:
        return []
    params = {
        "health": jsonb_rows(health),
        "threshold": threshold,
        "cooldown": cooldown_seconds,
        "disable_after": disable_after_seconds,
    }
    return await fetch_all(conn, RECORD_BATCH, params, HealthChange)
