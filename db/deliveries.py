"""SQL for deliveries (the delivery work queue) and delivery_attempts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from db.ids import created_at_of, is_uuid7

UNFINISHED = "('pending', 'delivering', 'failed')"


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


class Candidate(msgspec.Struct):
    """A due delivery locked by a claim, with what decides whether it may go now."""

    id: uuid.UUID
    created_at: datetime
    endpoint_id: uuid.UUID
    rate_limit_per_s: int | None
    probing: bool


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
    secret: str
    previous_secret: str | None
    source: str | None
    event_type: str | None
    payload: dict[str, Any] | None
    metadata: dict[str, Any] | None


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


COLUMNS = (
    "id, event_id, endpoint_id, queue, status, attempts,"
    " CASE WHEN next_attempt_at = 'infinity' THEN NULL ELSE next_attempt_at END AS next_attempt_at,"
    " last_status_code, last_error, last_attempt_at, created_at, updated_at"
)

# Due deliveries of one queue, oldest due first, skipping rows other claimers hold. An endpoint
# that is disabled or whose circuit is open gives none; an ordered endpoint gives only its head.
CANDIDATES = f"""
SELECT d.id, d.created_at, d.endpoint_id, e.rate_limit_per_s,
       e.consecutive_failures >= %(circuit_threshold)s AS probing
FROM deliveries d
JOIN endpoints e ON e.id = d.endpoint_id
WHERE d.queue = %(queue)s AND d.status IN {UNFINISHED} AND d.next_attempt_at <= now()
  AND e.is_active AND (e.circuit_open_until IS NULL OR e.circuit_open_until <= now())
  AND (NOT e.ordered OR NOT EXISTS (
      SELECT 1 FROM deliveries p
      WHERE p.endpoint_id = d.endpoint_id AND p.status IN {UNFINISHED} AND p.event_id < d.event_id))
ORDER BY d.next_attempt_at
LIMIT %(limit)s
FOR UPDATE OF d SKIP LOCKED
"""

# One probe per half-open endpoint across all workers: the row lock serialises claimers and the
# re-checked condition lets only the first one through.
TAKE_PROBES = """
UPDATE endpoints SET circuit_open_until = now() + make_interval(secs => %(lease)s)
WHERE id = ANY(%(ids)s) AND (circuit_open_until IS NULL OR circuit_open_until <= now())
RETURNING id
"""

# Count what each rate-limited endpoint is handed in the current second, for every worker.
COUNT_RATE = """
INSERT INTO endpoint_rate_windows AS w (endpoint_id, window_start, sent)
SELECT id, date_trunc('second', now()), wanted FROM unnest(%(ids)s::uuid[], %(wanted)s::int[]) AS r(id, wanted)
ON CONFLICT (endpoint_id, window_start) DO UPDATE SET sent = w.sent + EXCLUDED.sent
RETURNING endpoint_id, sent
"""

UNCOUNT_RATE = """
UPDATE endpoint_rate_windows AS w SET sent = w.sent - r.unused
FROM unnest(%(ids)s::uuid[], %(unused)s::int[]) AS r(id, unused)
WHERE w.endpoint_id = r.id AND w.window_start = date_trunc('second', now())
"""

# Over an endpoint's rate: wait for the next one-second window.
POSTPONE_TO_NEXT_SECOND = """
UPDATE deliveries d SET next_attempt_at = date_trunc('second', now()) + interval '1 second'
FROM unnest(%(ids)s::uuid[], %(created_ats)s::timestamptz[]) AS c(id, created_at)
WHERE d.id = c.id AND d.created_at = c.created_at
"""

# Lease the chosen rows and read what sending needs (a missing event was deleted or expired).
LEASE = """
WITH leased AS (
    UPDATE deliveries d SET status = 'delivering', attempts = d.attempts + 1,
        next_attempt_at = now() + make_interval(secs => %(lease)s), updated_at = now()
    FROM jsonb_to_recordset(%(rows)s::jsonb) AS c(id uuid, created_at timestamptz)
    WHERE d.id = c.id AND d.created_at = c.created_at
    RETURNING d.id, d.created_at, d.tenant_id, d.event_id, d.endpoint_id, d.attempts, d.retry_index
)
SELECT l.id, l.created_at, l.tenant_id, l.event_id, l.endpoint_id, l.attempts, l.retry_index,
       e.url, e.secret,
       CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END AS previous_secret,
       ev.source, ev.event_type, ev.payload, ev.metadata
FROM leased l
JOIN endpoints e ON e.id = l.endpoint_id
LEFT JOIN events ev ON ev.id = l.event_id AND ev.created_at = l.created_at
"""

# Write back a batch of tries. A row re-claimed after its lease ran out (attempts moved on)
# keeps the newer claim's state; the attempt is recorded either way.
RECORD = """
WITH r AS (
    SELECT * FROM jsonb_to_recordset(%(results)s::jsonb) AS r(
        id uuid, created_at timestamptz, tenant_id uuid, endpoint_id uuid, attempt int,
        status text, retry_index int, delay_seconds float8, status_code int,
        response_body text, latency_ms int, error text, started_at timestamptz)
), updated AS (
    UPDATE deliveries d SET status = r.status, retry_index = r.retry_index,
        next_attempt_at = now() + make_interval(secs => r.delay_seconds),
        last_status_code = r.status_code, last_error = r.error, last_attempt_at = now(),
        updated_at = now()
    FROM r
    WHERE d.id = r.id AND d.created_at = r.created_at AND d.attempts = r.attempt
      AND d.status = 'delivering'
)
INSERT INTO delivery_attempts (id, tenant_id, delivery_id, endpoint_id, attempt, status_code,
                               response_body, latency_ms, error, started_at, created_at)
SELECT eventgate_uuidv7(r.started_at), r.tenant_id, r.id, r.endpoint_id, r.attempt,
       r.status_code, r.response_body, r.latency_ms, r.error, r.started_at,
       date_trunc('milliseconds', r.started_at)
FROM r
"""

# Fold a batch's outcomes into each endpoint's circuit breaker. `failures` counts the failures
# after the endpoint's last success in the batch; a 410 Gone or failing past the limit disables.
ENDPOINT_HEALTH = """
WITH h AS (
    SELECT * FROM unnest(%(ids)s::uuid[], %(succeeded)s::bool[], %(failures)s::int[], %(gone)s::bool[])
        AS h(id, succeeded, failures, gone)
), next AS (
    SELECT e.id,
           CASE WHEN h.succeeded THEN 0 ELSE e.consecutive_failures END + h.failures AS failures,
           CASE WHEN h.failures = 0 THEN NULL ELSE COALESCE(
               CASE WHEN h.succeeded THEN NULL ELSE e.failing_since END, now()) END AS failing_since,
           h.gone
    FROM endpoints e JOIN h ON h.id = e.id
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
WHERE e.id = n.id
  -- A healthy endpoint that stays healthy is not written (nor locked): no contention.
  AND (n.failures > 0 OR e.consecutive_failures > 0 OR e.failing_since IS NOT NULL
       OR e.circuit_open_until IS NOT NULL)
RETURNING e.id, e.is_active, e.circuit_open_until
"""

# Hold back the unfinished deliveries of endpoints that were just disabled (never due until
# enabled) or whose circuit just opened (due when it half-opens).
HOLD_BACK = """
UPDATE deliveries d SET next_attempt_at = GREATEST(d.next_attempt_at, h.until::timestamptz),
    updated_at = now()
FROM unnest(%(ids)s::uuid[], %(untils)s::text[]) AS h(id, until)
WHERE d.endpoint_id = h.id AND d.status IN ('pending', 'failed')
"""

# Which queues hold deliveries due now (the sweeper wakes a job for each).
DUE_QUEUES = f"""
SELECT q.queue FROM unnest(ARRAY['critical', 'default', 'bulk']) AS q(queue)
WHERE EXISTS (SELECT 1 FROM deliveries d
              WHERE d.queue = q.queue AND d.status IN {UNFINISHED} AND d.next_attempt_at <= now())
"""

PURGE_RATE_WINDOWS = (
    "DELETE FROM endpoint_rate_windows WHERE window_start < now() - interval '1 minute'"
)

GET = f"""
SELECT {COLUMNS} FROM deliveries
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND created_at = %(created_at)s
"""

# Newest first; the cursor is the last id of the previous page (deliveries_tenant_idx).
LIST_PAGE = f"""
SELECT {COLUMNS} FROM deliveries
WHERE tenant_id = %(tenant_id)s
  AND (%(before)s::uuid IS NULL OR id < %(before)s)
  AND (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(endpoint_id)s::uuid IS NULL OR endpoint_id = %(endpoint_id)s)
  AND (%(event_id)s::uuid IS NULL OR event_id = %(event_id)s)
ORDER BY id DESC
LIMIT %(limit)s
"""

ATTEMPTS = """
SELECT id, attempt, status_code, response_body, latency_ms, error, started_at
FROM delivery_attempts
WHERE tenant_id = %(tenant_id)s AND delivery_id = %(id)s AND created_at >= %(created_at)s
ORDER BY id
"""

# Send a dead or failed delivery again now, with the full retry schedule ahead of it.
RETRY = f"""
UPDATE deliveries SET status = 'pending', retry_index = 0, next_attempt_at = now(), updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND created_at = %(created_at)s
  AND status IN ('dead', 'failed')
RETURNING {COLUMNS}
"""

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

INSERT_ONE = """
INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, queue, created_at)
VALUES (eventgate_uuidv7(%(created_at)s), %(tenant_id)s, %(event_id)s, %(endpoint_id)s,
        %(queue)s, %(created_at)s)
RETURNING id
"""


def _json(rows: Sequence[msgspec.Struct]) -> Jsonb:
    # One msgspec-encoded document per batch: far cheaper than many Python-dumped arrays.
    return Jsonb(list(rows), dumps=msgspec.json.encode)


def _key(tenant_id: uuid.UUID, delivery_id: uuid.UUID) -> dict[str, Any] | None:
    if not is_uuid7(delivery_id):
        return None
    return {"tenant_id": tenant_id, "id": delivery_id, "created_at": created_at_of(delivery_id)}


async def candidates(
    conn: AsyncConnection, queue: str, limit: int, circuit_threshold: int
) -> list[Candidate]:
    """Lock up to `limit` due deliveries of the queue (call inside a transaction)."""
    params = {"queue": queue, "limit": limit, "circuit_threshold": circuit_threshold}
    async with conn.cursor(row_factory=class_row(Candidate)) as cur:
        await cur.execute(CANDIDATES, params)
        return await cur.fetchall()


async def take_probes(
    conn: AsyncConnection, endpoint_ids: Sequence[uuid.UUID], lease_seconds: float
) -> set[uuid.UUID]:
    """Of these half-open endpoints, those this claim may probe."""
    cur = await conn.execute(TAKE_PROBES, {"ids": list(endpoint_ids), "lease": lease_seconds})
    return {row[0] for row in await cur.fetchall()}


async def count_rate(conn: AsyncConnection, wanted: dict[uuid.UUID, int]) -> dict[uuid.UUID, int]:
    """Add `wanted` to each endpoint's current second; returns the new totals."""
    params = {"ids": list(wanted), "wanted": list(wanted.values())}
    cur = await conn.execute(COUNT_RATE, params)
    return {row[0]: row[1] for row in await cur.fetchall()}


async def uncount_rate(conn: AsyncConnection, unused: dict[uuid.UUID, int]) -> None:
    """Give back what was counted but not sent this second."""
    await conn.execute(UNCOUNT_RATE, {"ids": list(unused), "unused": list(unused.values())})


async def postpone_to_next_second(conn: AsyncConnection, rows: Sequence[Candidate]) -> None:
    """Make these deliveries due at the next one-second window."""
    params = {"ids": [r.id for r in rows], "created_ats": [r.created_at for r in rows]}
    await conn.execute(POSTPONE_TO_NEXT_SECOND, params)


async def lease(
    conn: AsyncConnection, rows: Sequence[Candidate], lease_seconds: float
) -> list[Claimed]:
    """Mark these deliveries delivering for the lease and return what sending them needs."""
    params = {"rows": _json(rows), "lease": lease_seconds}
    async with conn.cursor(row_factory=class_row(Claimed)) as cur:
        await cur.execute(LEASE, params)
        return await cur.fetchall()


async def record(conn: AsyncConnection, results: Sequence[Result]) -> None:
    """Write back a batch of tries and their attempts."""
    await conn.execute(RECORD, {"results": _json(results)})


async def update_endpoint_health(
    conn: AsyncConnection,
    health: dict[uuid.UUID, tuple[bool, int, bool]],
    *,
    threshold: int,
    cooldown_seconds: float,
    disable_after_seconds: float,
) -> dict[uuid.UUID, str]:
    """Apply (succeeded, failures after it, gone) per endpoint; returns until when each
    endpoint that was disabled or whose circuit opened must hold its deliveries back."""
    params = {
        "ids": list(health),
        "succeeded": [h[0] for h in health.values()],
        "failures": [h[1] for h in health.values()],
        "gone": [h[2] for h in health.values()],
        "threshold": threshold,
        "cooldown": cooldown_seconds,
        "disable_after": disable_after_seconds,
    }
    if not health:
        return {}
    cur = await conn.execute(ENDPOINT_HEALTH, params)
    held: dict[uuid.UUID, str] = {}
    for endpoint_id, is_active, circuit_open_until in await cur.fetchall():
        if not is_active:
            held[endpoint_id] = "infinity"
        elif circuit_open_until is not None:
            held[endpoint_id] = circuit_open_until.isoformat()
    return held


async def hold_back(conn: AsyncConnection, held: dict[uuid.UUID, str]) -> None:
    """Make the endpoints' unfinished deliveries wait until the given time ('infinity')."""
    if held:
        await conn.execute(HOLD_BACK, {"ids": list(held), "untils": list(held.values())})


async def due_queues(conn: AsyncConnection) -> list[str]:
    """The queues that hold deliveries due now."""
    cur = await conn.execute(DUE_QUEUES)
    return [row[0] for row in await cur.fetchall()]


async def purge_rate_windows(conn: AsyncConnection) -> None:
    """Forget rate windows older than a minute."""
    await conn.execute(PURGE_RATE_WINDOWS)


async def get(
    conn: AsyncConnection, tenant_id: uuid.UUID, delivery_id: uuid.UUID
) -> Delivery | None:
    """One delivery of the tenant."""
    params = _key(tenant_id, delivery_id)
    if params is None:
        return None
    async with conn.cursor(row_factory=class_row(Delivery)) as cur:
        await cur.execute(GET, params)
        return await cur.fetchone()


async def list_page(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    before: uuid.UUID | None,
    limit: int,
    status: str | None = None,
    endpoint_id: uuid.UUID | None = None,
    event_id: uuid.UUID | None = None,
) -> list[Delivery]:
    """Up to `limit` deliveries of the tenant older than `before`, newest first."""
    params = {
        "tenant_id": tenant_id,
        "before": before,
        "limit": limit,
        "status": status,
        "endpoint_id": endpoint_id,
        "event_id": event_id,
    }
    async with conn.cursor(row_factory=class_row(Delivery)) as cur:
        await cur.execute(LIST_PAGE, params)
        return await cur.fetchall()


async def attempts(
    conn: AsyncConnection, tenant_id: uuid.UUID, delivery: Delivery
) -> list[Attempt]:
    """Every try of a delivery, oldest first."""
    params = {"tenant_id": tenant_id, "id": delivery.id, "created_at": delivery.created_at}
    async with conn.cursor(row_factory=class_row(Attempt)) as cur:
        await cur.execute(ATTEMPTS, params)
        return await cur.fetchall()


async def retry(
    conn: AsyncConnection, tenant_id: uuid.UUID, delivery_id: uuid.UUID
) -> Delivery | None:
    """Make a dead or failed delivery due now; None when it is not in either state."""
    params = _key(tenant_id, delivery_id)
    if params is None:
        return None
    async with conn.cursor(row_factory=class_row(Delivery)) as cur:
        await cur.execute(RETRY, params)
        return await cur.fetchone()


async def recover(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, since: datetime
) -> dict[str, int]:
    """Make every dead delivery of the endpoint since `since` due now; counts per queue."""
    params = {"tenant_id": tenant_id, "endpoint_id": endpoint_id, "since": since}
    cur = await conn.execute(RECOVER, params)
    return {row[0]: row[1] for row in await cur.fetchall()}


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
    cur = await conn.execute(INSERT_ONE, params)
    row = await cur.fetchone()
    assert row is not None
    return row[0]
