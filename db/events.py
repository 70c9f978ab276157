"""SQL for the events table (daily partitions on created_at, the UUIDv7 time of id)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, LiteralString

import msgspec
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from core.queues import (
    DELIVERIES_DUE_CHANNEL,
    EVENTS_STREAM_CHANNEL,
    QUEUE_OF_PRIORITY,
    STREAM_STALE_SECONDS,
)
from core.vocabulary import WAITING_DELIVERY_STATUSES, sql_in
from db.ids import created_at_of, is_uuid7
from db.query import fetch_all, fetch_one, fetch_tuples, fetch_value, jsonb_rows


class NewEvent(msgspec.Struct, kw_only=True):
    """The columns of an event being ingested."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    source: str
    event_type: str
    payload: dict[str, Any]
    metadata: dict[str, Any]
    idempotency_key: str | None
    correlation_id: str | None
    priority: str
    channels: list[str] = msgspec.field(default_factory=list)
    deliver_at: datetime | None = None
    created_at: datetime | None = None
    traceparent: str | None = None  # the fan-out's span, while tracing is on

    def __post_init__(self) -> None:
        # The partition key is the time inside the UUIDv7 id.
        if self.created_at is None:
            self.created_at = created_at_of(self.id)


class Event(msgspec.Struct):
    """One events row."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    source: str
    event_type: str
    payload: dict[str, Any]
    metadata: dict[str, Any]
    channels: list[str]
    status: str
    acknowledged_at: datetime | None
    deliver_at: datetime | None
    created_at: datetime


WAITING = sql_in(WAITING_DELIVERY_STATUSES)

# The queue each priority's deliveries go to, bound into the fan-out statement.
QUEUE_OF_JSON = Jsonb(QUEUE_OF_PRIORITY)

# A pending event whose deliveries wait for their time shows `scheduled`.
COLUMNS = (
    "id, tenant_id, source, event_type, payload, metadata, channels,"
    " CASE WHEN status = 'pending' AND deliver_at > now() THEN 'scheduled' ELSE status END"
    " AS status, acknowledged_at, deliver_at, created_at"
)

# Insert events (of one tenant) and, in the same statement, one delivery per matching endpoint
# (by type pattern and channel through endpoints_subscription_idx, then by payload filter; a
# disabled endpoint's wait, never due until it is enabled; a scheduled event's wait for its
# deliver_at, found by the workers' periodic claim). Each queue that got due deliveries
# is returned with its engine's promise, for the caller to announce after COMMIT
# (after_commit), or announced on the deliveries-due channel at COMMIT: a NOTIFY takes the
# notification queue's lock from COMMIT until the commit is flushed, so every ingest that
# sends one waits for the others' flushes. The tenant is told to its open event streams;
# the schema version
# of each ingested type that has a schema. With only_unchecked (one statement, no
# transaction around it) nothing is inserted when a type has a schema
# (endpoints_subscription_idx, event_types_pkey, event_streams_tenant_idx,
# delivery_claim_promises_pkey). Queue names and
# the channels come from core.queues as parameters.
INSERT_WITH_FAN_OUT = """
WITH r AS (
    SELECT * FROM jsonb_to_recordset(%(events)s::jsonb) AS r(
        id uuid, tenant_id uuid, source text, event_type text, payload jsonb, metadata jsonb,
        idempotency_key text, correlation_id text, priority text, channels text[],
        deliver_at timestamptz, created_at timestamptz, traceparent text)
), schemas AS (
    -- The schemas the payloads must match (the caller checks them before COMMIT).
    SELECT t.name, t.version FROM event_types t
    WHERE t.tenant_id = (SELECT tenant_id FROM r LIMIT 1) AND t.schema IS NOT NULL
      AND t.name IN (SELECT event_type FROM r)
), ev AS (
    INSERT INTO events (id, tenant_id, source, event_type, payload, metadata, idempotency_key,
                        correlation_id, priority, channels, deliver_at, created_at, traceparent)
    SELECT id, tenant_id, source, event_type, payload, metadata, idempotency_key,
           correlation_id, priority, channels, deliver_at, created_at, traceparent
    FROM r
    -- Run on its own (autocommit), nothing may be stored before its schema check.
    WHERE NOT (%(only_unchecked)s AND EXISTS (SELECT 1 FROM schemas))
    -- The keys are computed once per event here, not once per endpoint in the join below.
    RETURNING id, tenant_id, priority, payload, deliver_at, created_at,
              eventgate_event_keys(tenant_id, event_type, channels) AS keys
), fan_out AS (
    INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, queue, next_attempt_at,
                            deliver_at, created_at)
    SELECT eventgate_uuidv7(ev.created_at), ev.tenant_id, ev.id, e.id,
           %(queue_of)s::jsonb ->> ev.priority,
           CASE WHEN NOT e.is_active THEN 'infinity'
                ELSE greatest(now(), coalesce(ev.deliver_at, now())) END,
           ev.deliver_at, ev.created_at
    FROM ev
    -- One index lookup per event (OFFSET 0 keeps it a per-event subquery, never a join that
    -- compares every event with every endpoint): the cost follows the matching endpoints.
    CROSS JOIN LATERAL (
        SELECT e.id, e.is_active FROM endpoints e
        WHERE e.subscription_keys && ev.keys AND e.tenant_id = ev.tenant_id
          AND e.deleted_at IS NULL
          AND (e.filter_path IS NULL
               OR jsonb_path_match(ev.payload, e.filter_path, e.filter_vars, true) IS TRUE)
        OFFSET 0
    ) e
    ORDER BY ev.id
    RETURNING queue, next_attempt_at
)
-- Each queue that got due deliveries comes back with the seconds its engine's promise to keep
-- claiming it has left (µs, at most a second; 0: none). A caller that commits by itself
-- (after_commit) announces it after COMMIT (`due`); in a caller's transaction the statement
-- announces it (`wake`, sent at COMMIT).
SELECT CASE WHEN announced.n > 0 THEN 'wake' ELSE 'due' END AS kind, q.queue AS name,
       q.slack_us AS version
FROM (
    SELECT f.queue, coalesce((
        SELECT least(greatest(extract(epoch FROM p.busy_until - clock_timestamp()), 0), 1)
               * 1000000
        FROM delivery_claim_promises p WHERE p.queue = f.queue AND %(after_commit)s
    ), 0)::int AS slack_us
    FROM (SELECT DISTINCT queue FROM fan_out WHERE next_attempt_at <= now()) f
) q
CROSS JOIN LATERAL (
    SELECT count(*) AS n
    FROM (SELECT pg_notify(%(channel)s, q.queue) WHERE NOT %(after_commit)s) told
) announced
UNION ALL
SELECT 'schema', name, version FROM schemas
UNION ALL
-- The tenant's open streams (event_streams_tenant_idx) are told at COMMIT. The check sits
-- inside the lateral query so that no NOTIFY is sent without a stream: each one takes the
-- notification queue's lock at COMMIT, which serialises every committing ingest.
SELECT 'stream', t.id::text, 0
FROM (SELECT tenant_id AS id FROM ev LIMIT 1) t
CROSS JOIN LATERAL (
    SELECT pg_notify(%(stream_channel)s, t.id::text)
    WHERE EXISTS (SELECT 1 FROM event_streams s WHERE s.tenant_id = t.id
                  AND s.seen_at > now() - make_interval(secs => %(stream_stale)s))
) told
"""

# An event that skips the inbox and fan-out; test sends add their one delivery (events_pkey).
INSERT_ACKNOWLEDGED = """
INSERT INTO events (id, tenant_id, source, event_type, payload, metadata, priority, status,
                    acknowledged_at, created_at)
VALUES (%(id)s, %(tenant_id)s, %(source)s, %(event_type)s, %(payload)s, %(metadata)s,
        %(priority)s, 'acknowledged', now(), %(created_at)s)
"""

# One event of a tenant; id and created_at prune to one partition (events_pkey).
GET = f"""
SELECT {COLUMNS} FROM events
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND created_at = %(created_at)s
"""

# A page of a tenant's pending events, oldest first, after the cursor (events_inbox_idx). The
# cursor is always bound (the nil id when there is none) so every plan starts the index there.
INBOX_PAGE = f"""
SELECT {COLUMNS} FROM events
WHERE tenant_id = %(tenant_id)s AND status = 'pending'
  AND id > %(after)s AND created_at >= %(after_created_at)s
"""
# Each filter is its own statement, never `(x IS NULL OR col = x)`: a prepared statement's
# generic plan then still uses the filter's index (events_inbox_source_idx,
# events_inbox_type_idx), which already yields the id order.
INBOX_FILTERS: dict[str, LiteralString] = {
    "source": "AND source = %(source)s\n",
    "event_type": "AND event_type = %(event_type)s\n",
}
INBOX_ORDER = "ORDER BY id LIMIT %(limit)s"
# A channel may sit at any of an event's ten positions: one branch per position, each an
# ordered range of events_inbox_channel<k>_idx (channels are unique per event, so no event
# comes twice).
INBOX_CHANNEL_AT: LiteralString = "AND channels[{k}] = %(channel)s AND channels[{k}] IS NOT NULL\n"
MAX_CHANNELS = 10
NIL_ID = uuid.UUID(int=0)

# Acknowledge a pending event; a concurrent second ack finds it no longer pending (events_pkey).
ACK = """
UPDATE events SET status = 'acknowledged', acknowledged_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND created_at = %(created_at)s
  AND status = 'pending'
RETURNING acknowledged_at
"""

# Delete one event of a tenant and cancel its waiting deliveries (a scheduled event's, until
# its time), which share its created_at (events_pkey, deliveries_event_idx); one being sent
# now ends dead if its try fails, when the next claim finds no event.
DELETE = f"""
WITH cancelled AS (
    UPDATE deliveries SET status = 'cancelled', next_attempt_at = 'infinity',
        last_error = 'event deleted', updated_at = now()
    WHERE tenant_id = %(tenant_id)s AND event_id = %(id)s AND created_at = %(created_at)s
      AND status IN {WAITING}
)
DELETE FROM events
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND created_at = %(created_at)s
"""


def _key(tenant_id: uuid.UUID, event_id: uuid.UUID) -> dict[str, Any] | None:
    # Only UUIDv7 ids carry the created_at that finds the partition; no event has another kind.
    if not is_uuid7(event_id):
        return None
    return {"tenant_id": tenant_id, "id": event_id, "created_at": created_at_of(event_id)}


class FanOut(msgspec.Struct):
    """What inserting events found: the queues announced at COMMIT, the queues left for the
    caller to announce with the seconds their engine's promise to keep claiming had left, and
    schemas to
    check."""

    wake_queues: list[str]
    schema_versions: dict[str, int]
    due_queues: dict[str, float] = msgspec.field(default_factory=dict)


# Each setting of the two switches is a statement of its own, the switch written in as a
# constant. Bound as parameters, they let every custom plan drop a branch the generic plan
# keeps, so Postgres judged the generic plan dearer and planned the statement afresh at every
# call: with after_commit off (an Idempotency-Key's transaction, a schedule) eight connections
# committed half as many events/s as with it on, which had kept its generic plan.
FAN_OUT_STATEMENTS = {
    (only_unchecked, after_commit): INSERT_WITH_FAN_OUT.replace(
        "%(only_unchecked)s", "true" if only_unchecked else "false"
    ).replace("%(after_commit)s", "true" if after_commit else "false")
    for only_unchecked in (False, True)
    for after_commit in (False, True)
}


async def insert_with_fan_out(
    conn: AsyncConnection,
    events: Sequence[NewEvent],
    *,
    only_unchecked: bool = False,
    after_commit: bool = False,
) -> FanOut:
    """Insert one tenant's events and their deliveries. Inside a transaction, the caller
    checks the returned schema versions before COMMIT; with only_unchecked (autocommit),
    nothing is inserted when any type has a schema (schema_versions then says which). With
    after_commit, no queue is announced at COMMIT: the caller announces due_queues itself,
    those whose engine promised to claim before its COMMIT excepted."""
    # One JSON document encoded by msgspec (C speed) instead of ten Python-dumped arrays.
    params = {
        "events": jsonb_rows(events),
        "queue_of": QUEUE_OF_JSON,
        "channel": DELIVERIES_DUE_CHANNEL,
        "stream_channel": EVENTS_STREAM_CHANNEL,
        "stream_stale": STREAM_STALE_SECONDS,
    }
    statement = FAN_OUT_STATEMENTS[only_unchecked, after_commit]
    result = FanOut([], {})
    for kind, name, version in await fetch_tuples(conn, statement, params):
        if kind == "wake":
            result.wake_queues.append(name)
        elif kind == "due":
            result.due_queues[name] = version / 1_000_000
        elif kind == "schema":
            result.schema_versions[name] = version
    return result


async def insert_acknowledged(conn: AsyncConnection, event: NewEvent) -> None:
    """Insert one event already acknowledged, without deliveries."""
    params = msgspec.structs.asdict(event)
    params.update(
        payload=Jsonb(event.payload),
        metadata=Jsonb(event.metadata),
        created_at=created_at_of(event.id),
    )
    await conn.execute(INSERT_ACKNOWLEDGED, params)


async def get(conn: AsyncConnection, tenant_id: uuid.UUID, event_id: uuid.UUID) -> Event | None:
    """One event of the tenant."""
    params = _key(tenant_id, event_id)
    return None if params is None else await fetch_one(conn, GET, params, Event)


def inbox_query(filters: dict[str, str]) -> LiteralString:
    """The inbox statement for this set of filters (built from the constants above only)."""
    return _inbox_query(tuple(name for name in (*INBOX_FILTERS, "channel") if name in filters))


@functools.cache
def _inbox_query(names: tuple[str, ...]) -> LiteralString:
    # One text per set of filter names (eight at most), built once.
    query: LiteralString = INBOX_PAGE
    for name in INBOX_FILTERS:
        if name in names:
            query += INBOX_FILTERS[name]
    if "channel" not in names:
        return query + INBOX_ORDER
    # Each branch takes its own first page in index order (the planner merges partitions
    # under a LIMIT, but not the branches of a UNION): at most ten pages are then sorted.
    branches = [
        f"({query}{INBOX_CHANNEL_AT.replace('{k}', str(k))}{INBOX_ORDER})"
        for k in range(1, MAX_CHANNELS + 1)
    ]
    return "\nUNION ALL\n".join(branches) + "\n" + INBOX_ORDER


async def inbox_page(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    after: uuid.UUID | None,
    filters: dict[str, str],
    limit: int,
) -> list[Event]:
    """Up to `limit` pending events of the tenant after `after`, oldest first, with the given
    filters (source, event_type, channel) all holding."""
    after_created_at = created_at_of(after) if after and is_uuid7(after) else datetime.min
    params = {
        "tenant_id": tenant_id,
        "after": after or NIL_ID,
        "after_created_at": after_created_at.replace(tzinfo=UTC),
        "limit": limit,
        **filters,
    }
    return await fetch_all(conn, inbox_query(filters), params, Event)


async def ack(conn: AsyncConnection, tenant_id: uuid.UUID, event_id: uuid.UUID) -> datetime | None:
    """Acknowledge a pending event; None when it is not pending (or not there)."""
    params = _key(tenant_id, event_id)
    return None if params is None else await fetch_value(conn, ACK, params)


async def delete(conn: AsyncConnection, tenant_id: uuid.UUID, event_id: uuid.UUID) -> bool:
    """Delete an event; True when there was one."""
    params = _key(tenant_id, event_id)
    if params is None:
        return False
    cur = await conn.execute(DELETE, params)
    return cur.rowcount > 0
