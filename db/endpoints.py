"""SQL for the endpoints table (webhook subscriptions).

Disable, enable and delete also move the endpoint's waiting deliveries (park, release, end) in
the same statement, so an endpoint and its deliveries never disagree: that is why this module
writes deliveries too. The circuit-breaker columns are written by db/endpoint_health.py, the
secrets (and the sealed destination config) by db/endpoint_secrets.py.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection

from core.secrets import public_key_of, scheme_of
from core.vocabulary import (
    ENDED_BY_ENDPOINT_DELETION,
    UNFINISHED_DELIVERY_STATUSES,
    WAITING_DELIVERY_STATUSES,
    sql_in,
)
from db.endpoint_secrets import seal_config, seal_secret
from db.query import as_jsonb, fetch_all, fetch_one, fetch_tuples

UNFINISHED = sql_in(UNFINISHED_DELIVERY_STATUSES)
WAITING = sql_in(WAITING_DELIVERY_STATUSES)


class Endpoint(msgspec.Struct):
    """One endpoints row, without its secrets; circuit is derived from circuit_open_until."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    channels: list[str]
    filter: dict[str, Any] | None
    is_active: bool
    disabled_reason: str | None
    rate_limit_per_s: int | None
    ordered: bool
    operational: bool
    metadata: dict[str, Any]
    circuit: str
    circuit_open_until: datetime | None
    consecutive_failures: int
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime
    signature_scheme: str
    public_key: str | None
    kind: str
    config: dict[str, Any]


class EndpointWithQueues(Endpoint):
    """An endpoint just enabled, with the queues whose deliveries became due."""

    queues: list[str]


class NewEndpoint(msgspec.Struct, kw_only=True):
    """The columns of an endpoint being created."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    channels: list[str]
    filter: dict[str, Any] | None
    filter_path: str | None
    filter_vars: dict[str, Any] | None
    secret: str
    rate_limit_per_s: int | None
    ordered: bool
    metadata: dict[str, Any]
    operational: bool = False
    kind: str = "http"
    # The destination config as shown (credentials left out), and whole, to be sealed (None
    # when there is nothing beyond the shown part).
    config: dict[str, Any] = msgspec.field(default_factory=lambda: {"kind": "http"})
    config_whole: str | None = None


class EndpointChanges(msgspec.Struct, kw_only=True):
    """A PATCH: `given` names the fields to change; the others are ignored."""

    given: list[str]
    url: str | None = None
    description: str | None = None
    event_types: list[str] | None = None
    channels: list[str] | None = None
    filter: dict[str, Any] | None = None
    filter_path: str | None = None
    filter_vars: dict[str, Any] | None = None
    rate_limit_per_s: int | None = None
    ordered: bool | None = None
    operational: bool | None = None
    metadata: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    config_whole: str | None = None


COLUMNS = (
    "id, tenant_id, url, description, event_types, channels, filter, is_active, disabled_reason,"
    " rate_limit_per_s,"
    " ordered, operational, metadata,"
    " CASE WHEN circuit_open_until IS NULL THEN 'closed'"
    "      WHEN circuit_open_until > now() THEN 'open' ELSE 'half-open' END AS circuit,"
    " circuit_open_until, consecutive_failures, failing_since, created_at, updated_at, signature_scheme, public_key,"
    " kind, config"
)
# The columns bound as jsonb.
JSONB = ("metadata", "filter", "filter_vars", "config")
LIVE = "tenant_id = %(tenant_id)s AND id = %(id)s AND deleted_at IS NULL"

# Create an endpoint (endpoints_pkey).
INSERT = f"""
INSERT INTO endpoints (id, tenant_id, url, description, event_types, channels, filter,
                       filter_path, filter_vars, secret_encrypted, rate_limit_per_s, ordered,
                       operational, metadata, signature_scheme, public_key, kind, config,
                       config_encrypted)
VALUES (%(id)s, %(tenant_id)s, %(url)s, %(description)s, %(event_types)s, %(channels)s,
        %(filter)s, %(filter_path)s::jsonpath, %(filter_vars)s, %(secret)s,
        %(rate_limit_per_s)s, %(ordered)s, %(operational)s, %(metadata)s, %(signature_scheme)s, %(public_key)s,
        %(kind)s, %(config)s, %(config_whole)s)
RETURNING {COLUMNS}
"""

# One live endpoint of a tenant (endpoints_pkey).
GET = f"SELECT {COLUMNS} FROM endpoints WHERE {LIVE}"

# A page of a tenant's live endpoints in id order after the cursor (endpoints_tenant_idx).
LIST_PAGE = f"""
SELECT {COLUMNS} FROM endpoints
WHERE tenant_id = %(tenant_id)s AND deleted_at IS NULL AND (%(after)s::uuid IS NULL OR id > %(after)s)
ORDER BY id
LIMIT %(limit)s
"""

# A tenant's live endpoints whose URL or description holds the text (a console's filter; a
# bounded scan of one tenant's endpoints by endpoints_tenant_idx, at most `limit` found).
MATCHING = """
SELECT id FROM endpoints
WHERE tenant_id = %(tenant_id)s AND deleted_at IS NULL
  AND (%(channel)s::text IS NULL OR %(channel)s = ANY(channels))
  AND (strpos(lower(url), lower(%(text)s)) > 0 OR strpos(lower(description), lower(%(text)s)) > 0)
ORDER BY id
LIMIT %(limit)s
"""

# A page of a tenant's live endpoints of one kind in id order after the cursor
# (endpoints_tenant_kind_idx).
LIST_OF_KIND = f"""
SELECT {COLUMNS} FROM endpoints
WHERE tenant_id = %(tenant_id)s AND kind = %(kind)s AND deleted_at IS NULL
  AND (%(after)s::uuid IS NULL OR id > %(after)s)
ORDER BY id
LIMIT %(limit)s
"""

# A page of a tenant's live endpoints with one channel, in id order after the cursor: the
# channel's few rows by containment (endpoints_channel_idx), never the tenant's others. The
# CTE is materialized so that even a generic plan looks the channel up first rather than walk
# endpoints_tenant_idx in id order, filtering (10,000 rows for one).
LIST_IN_CHANNEL = f"""
WITH in_channel AS MATERIALIZED (
    SELECT {COLUMNS} FROM endpoints
    WHERE eventgate_tenant_channels(tenant_id, channels)
          @> ARRAY[%(tenant_id)s::text || ' ' || %(channel)s]
      AND deleted_at IS NULL
)
SELECT * FROM in_channel
WHERE tenant_id = %(tenant_id)s AND (%(after)s::uuid IS NULL OR id > %(after)s)
  AND (%(kind)s::text IS NULL OR kind = %(kind)s)
ORDER BY id
LIMIT %(limit)s
"""

# PATCH: only the fields named in `given` change (endpoints_pkey).
UPDATE = f"""
UPDATE endpoints SET
    url = CASE WHEN 'url' = ANY(%(given)s) THEN %(url)s ELSE url END,
    description = CASE WHEN 'description' = ANY(%(given)s) THEN %(description)s ELSE description END,
    event_types = CASE WHEN 'event_types' = ANY(%(given)s) THEN %(event_types)s ELSE event_types END,
    channels = CASE WHEN 'channels' = ANY(%(given)s) THEN %(channels)s ELSE channels END,
    filter = CASE WHEN 'filter' = ANY(%(given)s) THEN %(filter)s ELSE filter END,
    filter_path = CASE WHEN 'filter' = ANY(%(given)s) THEN %(filter_path)s::jsonpath
                       ELSE filter_path END,
    filter_vars = CASE WHEN 'filter' = ANY(%(given)s) THEN %(filter_vars)s ELSE filter_vars END,
    rate_limit_per_s = CASE WHEN 'rate_limit_per_s' = ANY(%(given)s)
                            THEN %(rate_limit_per_s)s ELSE rate_limit_per_s END,
    ordered = CASE WHEN 'ordered' = ANY(%(given)s) THEN %(ordered)s ELSE ordered END,
    operational = CASE WHEN 'operational' = ANY(%(given)s) THEN %(operational)s
                       ELSE operational END,
    metadata = CASE WHEN 'metadata' = ANY(%(given)s) THEN %(metadata)s ELSE metadata END,
    config = CASE WHEN 'config' = ANY(%(given)s) THEN %(config)s ELSE config END,
    config_encrypted = CASE WHEN 'config' = ANY(%(given)s) THEN %(config_whole)s
                            ELSE config_encrypted END,
    updated_at = now()
WHERE {LIVE}
RETURNING {COLUMNS}
"""

# Pause an endpoint and park its waiting deliveries (never due) so claims skip them cheaply
# (endpoints_pkey, deliveries_unfinished_idx).
DISABLE = f"""
WITH endpoint AS (
    UPDATE endpoints SET is_active = false, disabled_reason = %(reason)s, updated_at = now()
    WHERE {LIVE}
    RETURNING {COLUMNS}
), parked AS (
    UPDATE deliveries SET next_attempt_at = 'infinity', updated_at = now()
    WHERE tenant_id = %(tenant_id)s AND endpoint_id = (SELECT id FROM endpoint)
      AND status IN {WAITING}
)
SELECT * FROM endpoint
"""

# Resume an endpoint: close its circuit and make every waiting delivery due now (a scheduled
# one at its deliver_at)
# (endpoints_pkey, deliveries_unfinished_idx).
ENABLE = f"""
WITH endpoint AS (
    UPDATE endpoints SET is_active = true, disabled_reason = NULL, consecutive_failures = 0,
        failing_since = NULL, circuit_open_until = NULL, updated_at = now()
    WHERE {LIVE}
    RETURNING {COLUMNS}
), released AS (
    UPDATE deliveries SET next_attempt_at = greatest(now(), coalesce(deliver_at, now())),
        updated_at = now()
    WHERE tenant_id = %(tenant_id)s AND endpoint_id = (SELECT id FROM endpoint)
      AND status IN {WAITING} AND next_attempt_at > now()
    RETURNING queue
)
SELECT endpoint.*, ARRAY(SELECT DISTINCT queue FROM released) AS queues FROM endpoint
"""

# Delete an endpoint but keep the row for history; its waiting deliveries can never go, so
# they end dead. One being sent is left to its worker, which records it delivered if the
# receiver took it and dead otherwise (a worker that died meanwhile: the purge ends it)
# (endpoints_pkey, deliveries_unfinished_idx).
DELETE = f"""
WITH endpoint AS (
    UPDATE endpoints SET deleted_at = now(), is_active = false, disabled_reason = 'deleted',
        updated_at = now()
    WHERE {LIVE}
    RETURNING {COLUMNS}
), ended AS (
    UPDATE deliveries SET status = 'dead', last_error = %(ended)s, updated_at = now()
    WHERE tenant_id = %(tenant_id)s AND endpoint_id = (SELECT id FROM endpoint)
      AND status IN {WAITING}
)
SELECT * FROM endpoint
"""

# End the deliveries of endpoints deleted in the last week that a worker left unfinished when
# it died mid-send: no claim takes a deleted endpoint's rows, so once the lease has run out
# nothing else would (deliveries_unfinished_idx, per deleted endpoint).
END_ORPHANED = f"""
UPDATE deliveries d SET status = 'dead', last_error = %(ended)s, updated_at = now()
FROM endpoints e
WHERE e.deleted_at > now() - interval '7 days'
  AND d.tenant_id = e.tenant_id AND d.endpoint_id = e.id AND d.status IN {UNFINISHED}
  AND d.next_attempt_at <= now()
"""


def _where(tenant_id: uuid.UUID, endpoint_id: uuid.UUID, **extra: Any) -> dict[str, Any]:
    return {"tenant_id": tenant_id, "id": endpoint_id, **extra}


async def insert(conn: AsyncConnection, new: NewEndpoint) -> Endpoint:
    """Create an endpoint (its secret sealed on the way in)."""
    params = as_jsonb(msgspec.structs.asdict(new), *JSONB)
    params["secret"] = seal_secret(new.id, "secret", new.secret)
    # The scheme and the public key follow from the secret (whsec_: v1; whsk_: v1a).
    params["signature_scheme"] = scheme_of(new.secret)
    params["public_key"] = public_key_of(new.secret)
    params["config_whole"] = seal_config(new.id, new.config_whole)
    row = await fetch_one(conn, INSERT, params, Endpoint)
    assert row is not None
    return row


async def get(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> Endpoint | None:
    """One live endpoint of the tenant."""
    return await fetch_one(conn, GET, _where(tenant_id, endpoint_id), Endpoint)


async def list_page(
    conn: AsyncConnection, tenant_id: uuid.UUID, after: uuid.UUID | None, limit: int
) -> list[Endpoint]:
    """Up to `limit` live endpoints after `after`, oldest first."""
    params = {"tenant_id": tenant_id, "after": after, "limit": limit}
    return await fetch_all(conn, LIST_PAGE, params, Endpoint)


async def matching(
    conn: AsyncConnection, tenant_id: uuid.UUID, text: str, channel: str | None, limit: int
) -> list[uuid.UUID]:
    """Ids of live endpoints whose URL or description holds `text` (in the channel)."""
    params = {"tenant_id": tenant_id, "text": text, "channel": channel, "limit": limit}
    return [row[0] for row in await fetch_tuples(conn, MATCHING, params)]


async def list_of_kind(
    conn: AsyncConnection, tenant_id: uuid.UUID, kind: str, after: uuid.UUID | None, limit: int
) -> list[Endpoint]:
    """Up to `limit` live endpoints of this kind after `after`, oldest first."""
    params = {"tenant_id": tenant_id, "kind": kind, "after": after, "limit": limit}
    return await fetch_all(conn, LIST_OF_KIND, params, Endpoint)


async def list_in_channel(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    channel: str,
    after: uuid.UUID | None,
    limit: int,
    kind: str | None = None,
) -> list[Endpoint]:
    """Up to `limit` live endpoints with this channel (and kind) after `after`, oldest first."""
    params = {"tenant_id": tenant_id, "channel": channel, "after": after, "limit": limit}
    return await fetch_all(conn, LIST_IN_CHANNEL, {**params, "kind": kind}, Endpoint)


async def update(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, changes: EndpointChanges
) -> Endpoint | None:
    """Change the given fields of an endpoint."""
    params = as_jsonb(msgspec.structs.asdict(changes), *JSONB)
    params["config_whole"] = seal_config(endpoint_id, changes.config_whole)
    return await fetch_one(conn, UPDATE, _where(tenant_id, endpoint_id, **params), Endpoint)


async def disable(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, reason: str
) -> Endpoint | None:
    """Pause an endpoint; its deliveries wait."""
    return await fetch_one(conn, DISABLE, _where(tenant_id, endpoint_id, reason=reason), Endpoint)


async def enable(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> EndpointWithQueues | None:
    """Resume an endpoint; returns it with the queues whose deliveries became due."""
    return await fetch_one(conn, ENABLE, _where(tenant_id, endpoint_id), EndpointWithQueues)


async def delete(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> Endpoint | None:
    """Delete an endpoint (kept for history) and end its waiting deliveries."""
    params = _where(tenant_id, endpoint_id, ended=ENDED_BY_ENDPOINT_DELETION)
    return await fetch_one(conn, DELETE, params, Endpoint)


async def end_orphaned_deliveries(conn: AsyncConnection) -> int:
    """End the deliveries of deleted endpoints whose worker died mid-send; how many."""
    cur = await conn.execute(END_ORPHANED, {"ended": ENDED_BY_ENDPOINT_DELETION})
    return cur.rowcount
