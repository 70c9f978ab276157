"""SQL of the delivery work queue: claim due deliveries, lease them, write the outcomes back.

The deliveries table is the queue. Claimers lock due rows with FOR UPDATE SKIP LOCKED, lease
them (status delivering, next_attempt_at pushed out by the lease) and commit before any HTTP.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection

from core.destination_configs import DestinationConfig, decode_config
from core.queues import DELIVERIES_DUE_CHANNEL
from core.vocabulary import (
    ENDED_BY_ENDPOINT_DELETION,
    UNFINISHED_DELIVERY_STATUSES,
    WAITING_DELIVERY_STATUSES,
    sql_in,
)
from db.endpoint_secrets import open_secret
from db.query import fetch_all, fetch_flagged, fetch_tuples, jsonb_rows

UNFINISHED = sql_in(UNFINISHED_DELIVERY_STATUSES)
WAITING = sql_in(WAITING_DELIVERY_STATUSES)


class Candidate(msgspec.Struct):
    """A due delivery locked by a claim, with what decides whether it may go now."""

    id: uuid.UUID
    created_at: datetime
    tenant_id: uuid.UUID
    endpoint_id: uuid.UUID
    rate_limit_per_s: int | None
    probing: bool
    due_at: datetime  # when it fell due: its queue wait starts then


class Claimed(msgspec.Struct):
    """A claimed delivery with everything its HTTP request needs."""

    id: uuid.UUID
    created_at: datetime
    tenant_id: uuid.UUID
    event_id: uuid.UUID
    endpoint_id: uuid.UUID
    attempts: int
    retry_index: int
    url: str
    ordered: bool
    kind: str
    config_encrypted: bytes | None
    healthy: bool  # no failures on record and no circuit: a success changes nothing there
    secret_encrypted: bytes
    previous_secret_encrypted: bytes | None
    source: str | None
    event_type: str | None
    payload: dict[str, Any] | None
    metadata: dict[str, Any] | None
    transformation: str | None = None  # the endpoint's JavaScript handler, if it has one
    due_at: datetime | None = None  # when the claimed try fell due
    traceparent: str | None = None  # the trace of the event's fan-out (tracing on)

    @property
    def secret(self) -> str:
        """The endpoint's signing secret (opened in memory; the keyring remembers it)."""
        return open_secret(self.endpoint_id, "secret", self.secret_encrypted)

    @property
    def config(self) -> DestinationConfig | None:
        """The destination's whole config, credentials included; None for a plain endpoint."""
        sealed = self.config_encrypted
        return decode_config(open_secret(self.endpoint_id, "config", sealed)) if sealed else None

    @property
    def previous_secret(self) -> str | None:
        """The secret before the endpoint's last rotation, while its grace lasts."""
        sealed = self.previous_secret_encrypted
        return open_secret(self.endpoint_id, "previous_secret", sealed) if sealed else None


class Result(msgspec.Struct, kw_only=True):
    """The outcome of one try, as it is written back."""

    id: uuid.UUID
    created_at: datetime
    tenant_id: uuid.UUID
    endpoint_id: uuid.UUID
    attempt: int
    status: str
    retry_index: int
    delay_seconds: float
    status_code: int | None
    response_body: str | None
    latency_ms: int
    error: str | None
    started_at: datetime
    request_headers: dict[str, str] | None = None
    response_headers: dict[str, str] | None = None


class Hold(msgspec.Struct):
    """Hold an endpoint's waiting deliveries back until a time (None: until it is enabled)."""

    tenant_id: uuid.UUID
    endpoint_id: uuid.UUID
    until: datetime | None


# Deliveries of one queue due for at least `late` seconds, oldest due first, locked, skipping
# rows other claimers hold; none from a disabled or open-circuit endpoint, only the head of an
# ordered one (scheduled deliveries are due from their deliver_at)
# (deliveries_due_idx; the ordered check uses deliveries_unfinished_idx).
DUE = f"""
FROM deliveries d
JOIN endpoints e ON e.tenant_id = d.tenant_id AND e.id = d.endpoint_id
WHERE d.queue = %(queue)s AND d.status IN {UNFINISHED}
  AND d.next_attempt_at <= now() - make_interval(secs => %(late)s)
  AND e.is_active AND (e.circuit_open_until IS NULL OR e.circuit_open_until <= now())
  AND (NOT e.ordered OR NOT EXISTS (
      SELECT 1 FROM deliveries p
      WHERE p.tenant_id = d.tenant_id AND p.endpoint_id = d.endpoint_id AND p.status IN {UNFINISHED} AND p.event_id < d.event_id
        -- A scheduled delivery takes its place in the order when its time comes.
        AND (p.deliver_at IS NULL OR p.deliver_at <= now())))
ORDER BY d.next_attempt_at
LIMIT %(limit)s
FOR UPDATE OF d SKIP LOCKED
"""

# Lock due deliveries with what decides whether each may go now (inside a transaction).
CANDIDATES = f"""
SELECT d.id, d.created_at, d.tenant_id, d.endpoint_id, e.rate_limit_per_s,
       e.consecutive_failures >= %(circuit_threshold)s AS probing, d.next_attempt_at AS due_at
{DUE}"""

# What sending a leased delivery needs, from `leased l` (a missing event was deleted or
# expired) (endpoints_pkey, events_pkey).
CLAIMED_COLUMNS = """
       l.id, l.created_at, l.tenant_id, l.event_id, l.endpoint_id, l.attempts, l.retry_index,
       l.due_at,
       e.url, e.ordered, e.kind, e.config_encrypted,
       e.consecutive_failures = 0 AND e.failing_since IS NULL AND e.circuit_open_until IS NULL
           AS healthy,
       e.secret_encrypted,
       CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret_encrypted END
           AS previous_secret_encrypted,
       ev.source, ev.event_type, ev.payload, ev.metadata, e.transformation, ev.traceparent"""

# Make deliveries over their endpoint's rate due at the next one-second window (deliveries_pkey).
# Every statement that joins a batch of rows to a partitioned table also bounds their
# created_at values (`first`, `last`): the planner prunes to those partitions instead of
# planning a probe into each. A range, not a list of the batch's values: `= ANY` of a hundred
# values costs each primary key probe a hundred, and the planner then prefers a scan of every
# unfinished delivery (deliveries_due_idx) joined by filter, which grows with the backlog.
POSTPONE_TO_NEXT_SECOND = """
UPDATE deliveries d SET next_attempt_at = date_trunc('second', now()) + interval '1 second'
FROM unnest(%(tenant_ids)s::uuid[], %(ids)s::uuid[], %(created_ats)s::timestamptz[])
    AS c(tenant_id, id, created_at)
WHERE d.tenant_id = c.tenant_id AND d.id = c.id AND d.created_at = c.created_at
  AND d.created_at BETWEEN %(first)s AND %(last)s
"""

# Lease the chosen rows and read what sending needs (deliveries_pkey, endpoints_pkey,
# events_pkey).
LEASE = f"""
WITH leased AS (
    UPDATE deliveries d SET status = 'delivering', attempts = d.attempts + 1,
        next_attempt_at = now() + make_interval(secs => %(lease)s), updated_at = now()
    FROM jsonb_to_recordset(%(rows)s::jsonb) AS c(id uuid, created_at timestamptz,
                                                  tenant_id uuid, due_at timestamptz)
    WHERE d.tenant_id = c.tenant_id AND d.id = c.id AND d.created_at = c.created_at
      AND d.created_at BETWEEN %(first)s AND %(last)s
    RETURNING d.id, d.created_at, d.tenant_id, d.event_id, d.endpoint_id, d.attempts,
              d.retry_index, c.due_at
)
SELECT {CLAIMED_COLUMNS}
FROM leased l
JOIN endpoints e ON e.tenant_id = l.tenant_id AND e.id = l.endpoint_id
LEFT JOIN events ev ON ev.tenant_id = l.tenant_id AND ev.id = l.event_id AND ev.created_at = l.created_at
                    AND ev.created_at BETWEEN %(first)s AND %(last)s
"""

# The common claim in one statement, committed by itself: lock due deliveries and lease at
# once those whose endpoints have no rate limit and no circuit to probe. Every locked row
# comes back; `leased` is false for the others, which the transaction of CANDIDATES, the
# probes and the rate windows, then LEASE, decides on. With a promise (seconds), the listening
# engine's claim also says whether it keeps claiming by itself: leasing several, it promises
# to for that long at most; leasing fewer, it withdraws a promise it made (and claims once
# more a moment later), so ingest need not wake a busy engine. Its COMMIT does not wait for
# the WAL flush (synchronous_commit off for this transaction alone): a lease lost in a crash
# only makes its deliveries due again, a duplicate at worst, as a lease run out does
# (deliveries_due_idx, deliveries_pkey, endpoints_pkey, events_pkey,
# delivery_claim_promises_pkey).
CLAIM_PLAIN = f"""
WITH found AS (
    SELECT d.id, d.created_at, d.tenant_id, d.next_attempt_at AS due_at,
           e.rate_limit_per_s IS NULL AND e.consecutive_failures < %(circuit_threshold)s AS plain
    {DUE}
), promised AS (
    INSERT INTO delivery_claim_promises AS p (queue, busy_until)
    SELECT %(queue)s, clock_timestamp() + make_interval(secs => %(promise)s * (c.n > 1)::int)
    FROM (SELECT count(*) FILTER (WHERE plain) AS n FROM found) c
    WHERE %(promise)s > 0 AND (c.n > 1 OR EXISTS (
        SELECT 1 FROM delivery_claim_promises w
        WHERE w.queue = %(queue)s AND w.busy_until > clock_timestamp()))
    ON CONFLICT (queue) DO UPDATE SET busy_until = EXCLUDED.busy_until
), leased AS (
    UPDATE deliveries d SET status = 'delivering', attempts = d.attempts + 1,
        next_attempt_at = now() + make_interval(secs => %(lease)s), updated_at = now()
    FROM found c
    WHERE c.plain AND d.tenant_id = c.tenant_id AND d.id = c.id AND d.created_at = c.created_at
    RETURNING d.id, d.created_at, d.tenant_id, d.event_id, d.endpoint_id, d.attempts,
              d.retry_index, c.due_at
)
SELECT l.id IS NOT NULL AS leased, {CLAIMED_COLUMNS}
FROM found c
CROSS JOIN (SELECT set_config('synchronous_commit', 'off', true)) AS relaxed
LEFT JOIN leased l ON l.id = c.id
LEFT JOIN endpoints e ON e.tenant_id = l.tenant_id AND e.id = l.endpoint_id
LEFT JOIN events ev ON ev.tenant_id = l.tenant_id AND ev.id = l.event_id AND ev.created_at = l.created_at
"""

# Write back a batch of tries and insert their attempts. A row re-claimed after its lease ran
# out (attempts moved on) keeps the newer claim's state; the attempt is recorded either way.
# A try that did not succeed for an endpoint deleted meanwhile ends its delivery dead: none
# follows. delivery_attempts belongs to the queue: an attempt is written with its outcome,
# atomically (deliveries_pkey, endpoints_pkey).
RECORD = """
WITH r AS (
    SELECT * FROM jsonb_to_recordset(%(results)s::jsonb) AS r(
        id uuid, created_at timestamptz, tenant_id uuid, endpoint_id uuid, attempt int,
        status text, retry_index int, delay_seconds float8, status_code int,
        response_body text, latency_ms int, error text, started_at timestamptz,
        request_headers jsonb, response_headers jsonb)
), updated AS (
    UPDATE deliveries d
    SET status = CASE WHEN gone.at IS NULL THEN r.status ELSE 'dead' END,
        retry_index = r.retry_index,
        next_attempt_at = now() + make_interval(secs => r.delay_seconds),
        last_status_code = r.status_code,
        last_error = CASE WHEN gone.at IS NULL THEN r.error ELSE %(ended)s END,
        last_attempt_at = now(), updated_at = now()
    FROM r
    LEFT JOIN LATERAL (
        SELECT e.deleted_at AS at FROM endpoints e
        WHERE e.tenant_id = r.tenant_id AND e.id = r.endpoint_id AND e.deleted_at IS NOT NULL
          AND r.status <> 'succeeded'
        OFFSET 0  -- kept a subquery: a success skips the probe instead of filtering after it
    ) gone ON true
    WHERE d.tenant_id = r.tenant_id AND d.id = r.id AND d.created_at = r.created_at
      AND d.attempts = r.attempt
      AND d.status = 'delivering' AND d.created_at BETWEEN %(first)s AND %(last)s
)
INSERT INTO delivery_attempts (id, tenant_id, delivery_id, endpoint_id, attempt, status_code,
                               response_body, latency_ms, error, started_at, created_at,
                               request_headers, response_headers)
SELECT eventgate_uuidv7(r.started_at), r.tenant_id, r.id, r.endpoint_id, r.attempt,
       r.status_code, r.response_body, r.latency_ms, r.error, r.started_at,
       date_trunc('milliseconds', r.started_at), r.request_headers, r.response_headers
FROM r
"""

# Hold back the waiting deliveries of endpoints just disabled (never due until enabled) or
# whose circuit just opened (due when it half-opens) (deliveries_unfinished_idx).
HOLD_BACK = f"""
UPDATE deliveries d
SET next_attempt_at = GREATEST(d.next_attempt_at, COALESCE(h.until, 'infinity')),
    updated_at = now()
FROM unnest(%(tenant_ids)s::uuid[], %(ids)s::uuid[], %(untils)s::timestamptz[])
    AS h(tenant_id, id, until)
WHERE d.tenant_id = h.tenant_id AND d.endpoint_id = h.id AND d.status IN {WAITING}
"""

# Tell the workers of these queues that deliveries are due: the notifications go out when the
# caller's transaction commits, and not at all if it rolls back.
ANNOUNCE_DUE = """
SELECT pg_notify(%(channel)s, q) FROM unnest(%(queues)s::text[]) AS q
"""


# The backend pids of the delivery engines' listener connections, by the application name they
# connect with, oldest first (pg_stat_activity: a few rows per worker process).
LISTENING_ENGINES = """
SELECT pid FROM pg_stat_activity WHERE application_name = %(name)s ORDER BY backend_start, pid
"""


async def candidates(
    conn: AsyncConnection, queue: str, limit: int, circuit_threshold: int, late: float = 0.0
) -> list[Candidate]:
    """Lock up to `limit` deliveries of the queue due for `late` seconds (inside a
    transaction)."""
    params = {"queue": queue, "limit": limit, "circuit_threshold": circuit_threshold, "late": late}
    return await fetch_all(conn, CANDIDATES, params, Candidate)


async def claim_plain(
    conn: AsyncConnection,
    queue: str,
    limit: int,
    circuit_threshold: int,
    lease_seconds: float,
    late: float = 0.0,
    promise: float = 0.0,
) -> tuple[list[Claimed], int]:
    """Lock up to `limit` deliveries of the queue due for `late` seconds and lease those of
    endpoints with no rate limit and no circuit to probe (commits by itself): the leased ones,
    and how many others were due. With a `promise` > 0, leasing more than one records that the
    caller keeps claiming the queue by itself for `promise` seconds at most, and leasing fewer
    withdraws that."""
    params = {
        "queue": queue,
        "limit": limit,
        "circuit_threshold": circuit_threshold,
        "lease": lease_seconds,
        "late": late,
        "promise": promise,
    }
    return await fetch_flagged(conn, CLAIM_PLAIN, params, Claimed)


async def postpone_to_next_second(conn: AsyncConnection, rows: Sequence[Candidate]) -> None:
    """Make these deliveries due at the next one-second window."""
    params = {
        "tenant_ids": [r.tenant_id for r in rows],
        "ids": [r.id for r in rows],
        "created_ats": [r.created_at for r in rows],
        **_span(rows),
    }
    await conn.execute(POSTPONE_TO_NEXT_SECOND, params)


async def lease(
    conn: AsyncConnection, rows: Sequence[Candidate], lease_seconds: float
) -> list[Claimed]:
    """Mark these deliveries delivering for the lease and return what sending them needs."""
    params = {"rows": jsonb_rows(rows), "lease": lease_seconds, **_span(rows)}
    return await fetch_all(conn, LEASE, params, Claimed)


async def record(conn: AsyncConnection, results: Sequence[Result]) -> None:
    """Write back a batch of tries and their attempts."""
    if results:
        await conn.execute(RECORD, record_params(results))


def record_params(results: Sequence[Result]) -> dict[str, Any]:
    """What RECORD takes for a batch of tries."""
    return {"results": jsonb_rows(results), "ended": ENDED_BY_ENDPOINT_DELETION, **_span(results)}


def _span(rows: Sequence[Candidate] | Sequence[Result]) -> dict[str, datetime]:
    """The first and last created_at of a batch: what partition pruning needs."""
    return {"first": min(r.created_at for r in rows), "last": max(r.created_at for r in rows)}


async def hold_back(conn: AsyncConnection, holds: Sequence[Hold]) -> None:
    """Make the endpoints' waiting deliveries wait until each hold's time."""
    if holds:
        params = {
            "tenant_ids": [h.tenant_id for h in holds],
            "ids": [h.endpoint_id for h in holds],
            "untils": [h.until for h in holds],
        }
        await conn.execute(HOLD_BACK, params)


async def announce_due(conn: AsyncConnection, queues: Sequence[str]) -> None:
    """Wake the workers of these queues when the caller's transaction commits."""
    if queues:
        await conn.execute(
            ANNOUNCE_DUE, {"channel": DELIVERIES_DUE_CHANNEL, "queues": list(queues)}
        )


async def listening_engines(conn: AsyncConnection, name: str) -> list[int]:
    """The backend pids of the engines listening under `name`, oldest first."""
    return [row[0] for row in await fetch_tuples(conn, LISTENING_ENGINES, {"name": name})]
