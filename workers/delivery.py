"""Delivering a batch: claim due deliveries, send them signed, record every try.

Deliveries rows are the work items. `claim` locks a batch of due rows with FOR UPDATE SKIP
LOCKED and leases them (status delivering, next_attempt_at = now + lease) and commits;
`deliver_batch` sends them concurrently without any transaction open, each through its
endpoint's kind of destination (`workers/destinations/`, of which this module knows none),
then writes back the outcomes. A worker that dies mid-batch leaves leased rows that fall due again when the lease
runs out. workers/engine.py decides when to claim.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from core import logs, tracing
from core.encryption import UndecryptableSecret
from core.event_body import event_body
from core.metrics import DELIVERIES, DELIVERY_LATENCY
from core.settings import Settings
from db import delivery_queue, endpoint_health, rate_windows
from db.delivery_queue import Candidate, Claimed, Result
from db.endpoint_health import BatchHealth
from workers.attempt_spans import attempt_span, record_outcome
from workers.destinations import Destinations
from workers.destinations.base import Message, Outcome
from workers.notices import report_batch
from workers.signing import signature_header
from workers.transformations import shape

logger = logging.getLogger("eventgate.delivery")
ATTEMPTS_LOG = logs.get("eventgate.delivery")

DEADLOCK_RETRIES = 3
JITTER = 0.2  # retry delays vary by ±20 % so a recovered endpoint is not hit all at once


async def claim(
    pool: AsyncConnectionPool,
    queue: str,
    settings: Settings,
    late: float = 0.0,
    promise: float = 0.0,
) -> list[Claimed]:
    """Lease a batch of the queue's deliveries due for `late` seconds that their endpoints may
    take now (with a `promise` to claim again that long from now or later)."""
    async with pool.connection() as conn:
        claimed, others = await delivery_queue.claim_plain(
            conn,
            queue,
            settings.delivery_batch_size,
            settings.circuit_failure_threshold,
            settings.delivery_lease_seconds,
            late,
            promise,
        )
    if others:  # endpoints with a rate limit or a circuit to probe: decided one by one
        claimed += await _claim_admitted(pool, queue, settings, late)
    return claimed


async def _claim_admitted(
    pool: AsyncConnectionPool, queue: str, settings: Settings, late: float
) -> list[Claimed]:
    for attempt in range(1, DEADLOCK_RETRIES + 1):
        try:
            async with pool.connection() as conn, conn.transaction():
                found = await delivery_queue.candidates(
                    conn,
                    queue,
                    settings.delivery_batch_size,
                    settings.circuit_failure_threshold,
                    late,
                )
                chosen = await _admit(conn, found, settings) if found else []
                if not chosen:
                    return []
                return await delivery_queue.lease(conn, chosen, settings.delivery_lease_seconds)
        except psycopg.errors.DeadlockDetected:
            # A probe's endpoint lock can meet an API route locking endpoint then deliveries.
            if attempt == DEADLOCK_RETRIES:
                raise
    return []


async def _admit(
    conn: AsyncConnection, found: Sequence[Candidate], settings: Settings
) -> list[Candidate]:
    """One probe per half-open endpoint; no endpoint past its rate in this second."""
    probing = {(c.tenant_id, c.endpoint_id) for c in found if c.probing}
    if probing:
        lease = settings.delivery_lease_seconds
        allowed = await endpoint_health.take_probes(conn, list(probing), lease)
        seen: set[uuid.UUID] = set()
        kept = []
        for c in found:
            if c.probing and (c.endpoint_id not in allowed or c.endpoint_id in seen):
                continue
            seen.add(c.endpoint_id)
            kept.append(c)
        found = kept
    return await _within_rate(conn, found)


async def _within_rate(conn: AsyncConnection, found: Sequence[Candidate]) -> list[Candidate]:
    limited: dict[rate_windows.EndpointKey, list[Candidate]] = defaultdict(list)
    for c in found:
        if c.rate_limit_per_s is not None:
            limited[c.tenant_id, c.endpoint_id].append(c)
    if not limited:
        return list(found)
    totals = await rate_windows.count(conn, {e: len(rows) for e, rows in limited.items()})
    refused: list[Candidate] = []
    unused: dict[rate_windows.EndpointKey, int] = {}
    for endpoint_id, rows in limited.items():
        limit = rows[0].rate_limit_per_s or 0
        already = totals[endpoint_id] - len(rows)
        take = max(0, min(len(rows), limit - already))
        refused += rows[take:]
        if take < len(rows):
            unused[endpoint_id] = len(rows) - take
    if unused:
        await rate_windows.uncount(conn, unused)
        await delivery_queue.postpone_to_next_second(conn, refused)
    refused_ids = {c.id for c in refused}
    return [c for c in found if c.id not in refused_ids]


async def deliver_batch(
    pool: AsyncConnectionPool,
    destinations: Destinations,
    claimed: Sequence[Claimed],
    settings: Settings,
) -> list[Result]:
    """Send a claimed batch concurrently, then write every outcome back in one transaction."""
    outcomes = await asyncio.gather(*(send_one(destinations, c) for c in claimed))
    results = [
        plan(c, o, settings.delivery_retry_schedule) for c, o in zip(claimed, outcomes, strict=True)
    ]
    health = news_for_circuits(claimed, batch_health(claimed, outcomes))
    for attempt in range(1, DEADLOCK_RETRIES + 1):
        try:
            if not health:  # the common case: one statement, committed by itself
                async with pool.connection() as conn:
                    await delivery_queue.record(conn, results)
                count_outcomes(claimed, results)
                return results
            async with pool.connection() as conn, conn.transaction():
                # Endpoints before deliveries: the order the API's endpoint routes lock in.
                changed = await endpoint_health.record_batch(
                    conn,
                    health,
                    threshold=settings.circuit_failure_threshold,
                    cooldown_seconds=settings.circuit_cooldown_seconds,
                    disable_after_seconds=settings.endpoint_disable_after_seconds,
                )
                await delivery_queue.record(conn, results)
                await delivery_queue.hold_back(conn, [hold_for(c) for c in changed if c.held])
                await report_batch(
                    conn, claimed, results, changed, settings.operational_notice_window_seconds
                )
            count_outcomes(claimed, results)
            return results
        except psycopg.errors.DeadlockDetected:
            if attempt == DEADLOCK_RETRIES:
                raise  # the leases run out and the deliveries go again: nothing is lost
        except psycopg.OperationalError:
            # Pooled connections are not checked before use (a round trip per checkout): a
            # connection the database dropped fails here once, and the pool replaces it.
            if attempt == DEADLOCK_RETRIES:
                raise
            await asyncio.sleep(0.2 * attempt)
    return results


def count_outcomes(claimed: Sequence[Claimed], results: Sequence[Result]) -> None:
    """The delivery metrics of a batch just written back."""
    now = datetime.now(UTC)
    counts: Counter[tuple[str, str]] = Counter()
    for c, result in zip(claimed, results, strict=True):
        counts[c.kind, result.status] += 1
        if result.status == "succeeded":
            DELIVERY_LATENCY.observe((now - c.created_at).total_seconds())
        elif result.status != "cancelled":
            ATTEMPTS_LOG.warning(
                "delivery attempt failed",
                delivery_id=str(c.id),
                endpoint_id=str(c.endpoint_id),
                attempt=result.attempt,
                status_code=result.status_code,
                error=result.error,
                outcome=result.status,
            )
    for (kind, status), n in counts.items():  # a labelled child's lookup takes a lock
        DELIVERIES.labels(kind, status).inc(n)


def webhook_body(c: Claimed) -> bytes:
    """The JSON a delivery carries: the event as the API shows it."""
    return event_body(c.event_id, c.source, c.event_type, c.payload, c.metadata, c.created_at)


async def send_one(destinations: Destinations, c: Claimed) -> Outcome | None:
    """Send one delivery signed with every valid secret; None when the event is gone."""
    if not tracing.enabled():
        return await _send(destinations, c, traced=False)
    with attempt_span(c) as span:
        outcome = await _send(destinations, c, traced=True)
        record_outcome(span, outcome)
        return outcome


async def _send(destinations: Destinations, c: Claimed, traced: bool) -> Outcome | None:
    if c.payload is None:
        return None
    body, extra, method, url = webhook_body(c), {}, "POST", None
    if c.transformation is not None:
        shaped = await shape(destinations.sandbox, c, body)
        if isinstance(shaped, Outcome):
            return shaped
        body, extra, method, url = shaped.body, shaped.headers, shaped.method, shaped.url
    message_id = str(c.event_id)  # stable across retries: receivers de-duplicate on it
    timestamp = int(time.time())
    try:
        secrets = [c.secret] + ([c.previous_secret] if c.previous_secret else [])
        headers = {
            **extra,  # a transformation's own headers, never one of those below
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(secrets, message_id, timestamp, body),
        }
        if traced:
            tracing.inject(headers)  # the receiver's request continues the attempt's span
        message = Message(message_id, body, headers, method, url)
        return await destinations.send(c, message)
    except UndecryptableSecret as exc:
        # Never a wrong signature or credential, never a crashed batch: the try fails visibly
        # and is retried on the schedule (an operator's key fix makes the next one work).
        logger.error("cannot send delivery %s: %s", c.id, exc)
        return Outcome(False, None, None, f"cannot open a secret: {exc}", 0, datetime.now(UTC))


def plan(c: Claimed, outcome: Outcome | None, schedule: Sequence[float]) -> Result:
    """What a try means for its delivery: succeeded, failed with a next try, or dead."""
    if outcome is None:
        return _result(c, None, "dead", c.retry_index, 0.0, "the event is no longer stored")
    if outcome.succeeded:
        return _result(c, outcome, "succeeded", c.retry_index, 0.0, None)
    if outcome.cancelled:
        return _result(c, outcome, "cancelled", c.retry_index, 0.0, outcome.error)
    error = outcome.error or f"HTTP {outcome.status_code}"
    next_index = c.retry_index + 1
    if next_index >= len(schedule) or outcome.permanent:
        return _result(c, outcome, "dead", c.retry_index, 0.0, error)
    if outcome.retry_after is not None:
        delay = outcome.retry_after
    else:
        delay = schedule[next_index] * random.uniform(1 - JITTER, 1 + JITTER)
    return _result(c, outcome, "failed", next_index, delay, error)


def _result(
    c: Claimed,
    outcome: Outcome | None,
    status: str,
    retry_index: int,
    delay: float,
    error: str | None,
) -> Result:
    return Result(
        id=c.id,
        created_at=c.created_at,
        tenant_id=c.tenant_id,
        endpoint_id=c.endpoint_id,
        attempt=c.attempts,
        status=status,
        retry_index=retry_index,
        delay_seconds=delay,
        status_code=outcome.status_code if outcome else None,
        response_body=outcome.body if outcome else None,
        latency_ms=outcome.latency_ms if outcome else 0,
        error=error,
        started_at=outcome.started_at if outcome else datetime.now(UTC),
        request_headers=outcome.request_headers if outcome else None,
        response_headers=outcome.response_headers if outcome else None,
    )


def batch_health(
    claimed: Sequence[Claimed], outcomes: Sequence[Outcome | None]
) -> list[BatchHealth]:
    """Per endpoint: whether a try succeeded, the failures after the last success, and
    whether it answered 410 Gone."""
    health: dict[uuid.UUID, BatchHealth] = {}
    pairs = sorted(
        ((c, o) for c, o in zip(claimed, outcomes, strict=True) if o is not None and o.sent),
        key=lambda pair: pair[1].started_at,
    )
    for c, o in pairs:
        h = health.setdefault(
            c.endpoint_id, BatchHealth(c.tenant_id, c.endpoint_id, False, 0, False)
        )
        if o.succeeded:
            h.succeeded, h.failures = True, 0
        else:
            h.failures += 1
            h.gone = h.gone or o.gone
    return list(health.values())


def news_for_circuits(
    claimed: Sequence[Claimed], health: Sequence[BatchHealth]
) -> list[BatchHealth]:
    """The batch's health minus what changes nothing: every try of an endpoint that was
    healthy when claimed succeeded."""
    unhealthy = {c.endpoint_id for c in claimed if not c.healthy}
    return [h for h in health if h.failures or h.gone or h.endpoint_id in unhealthy]


def hold_for(change: endpoint_health.HealthChange) -> delivery_queue.Hold:
    """A disabled endpoint's deliveries wait until it is enabled; an open circuit's until it
    half-opens."""
    until = change.circuit_open_until if change.is_active else None
    return delivery_queue.Hold(change.tenant_id, change.endpoint_id, until)
