"""SQL for audit_logs: append to a tenant's hash chain, read pages, and verify the chain."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection

from db.query import as_jsonb, fetch_all, fetch_value


class _Recorded(msgspec.Struct, kw_only=True):
    """What an audit entry says: who did what to which resource, from where."""

    actor_key_id: uuid.UUID | None
    actor_key_prefix: str | None
    actor_user_id: uuid.UUID | None = None
    actor_email: str | None = None
    action: str
    resource_type: str
    resource_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    client_ip: str | None
    user_agent: str | None
    request_id: str | None


class NewEntry(_Recorded, kw_only=True):
    """An audit entry before the chain gives it seq, time and hashes."""

    tenant_id: uuid.UUID
    id: uuid.UUID


class Entry(_Recorded, kw_only=True):
    """One audit_logs row as the API shows it."""

    seq: int
    id: uuid.UUID
    created_at: datetime
    hash: bytes


class Break(msgspec.Struct):
    """Where a tenant's chain first fails to hold, and why (the row, when there is one)."""

    tenant_id: uuid.UUID
    seq: int
    id: uuid.UUID | None
    reason: str


class Head(msgspec.Struct):
    """The seq and hash a tenant's chain ends at, to keep outside the database."""

    tenant: str
    seq: int
    hash: bytes


# Append one entry to its tenant's chain, in the caller's transaction (audit_heads_pkey,
# audit_logs_pkey).
APPEND = """
SELECT eventgate_audit_append(ROW(
    %(tenant_id)s, 0, %(id)s, NULL, %(actor_key_id)s, %(actor_key_prefix)s, %(action)s,
    %(resource_type)s, %(resource_id)s, %(before)s, %(after)s, %(client_ip)s, %(user_agent)s,
    %(request_id)s, ''::bytea, ''::bytea, %(actor_user_id)s, %(actor_email)s)::audit_logs)
"""

COLUMNS = (
    "seq, id, created_at, actor_key_id, actor_key_prefix, action, resource_type, resource_id,"
    " before, after, client_ip, user_agent, request_id, hash, actor_user_id, actor_email"
)

# A page of a tenant's entries, newest first, before the cursor, each filter bound or null
# (audit_logs_pkey; the action, resource and actor indexes serve the selective filters).
PAGE = f"""
SELECT {COLUMNS} FROM audit_logs
WHERE tenant_id = %(tenant_id)s AND seq < %(before_seq)s
  AND (%(action)s::text IS NULL OR action = %(action)s)
  AND (%(resource_type)s::text IS NULL OR resource_type = %(resource_type)s)
  AND (%(resource_id)s::text IS NULL OR resource_id = %(resource_id)s)
  AND (%(actor_key_id)s::uuid IS NULL OR actor_key_id = %(actor_key_id)s)
  AND (%(since)s::timestamptz IS NULL OR created_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR created_at < %(until)s)
ORDER BY seq DESC
LIMIT %(limit)s
"""

# The first broken row of each tenant (or of one): a hash that is not sha256(prev_hash ||
# content), a prev_hash that is not the previous row's hash (or, for the first row left after
# retention, the checkpoint's), or a gap in seq (the chain in seq order: audit_logs_pkey).
VERIFY = """
WITH chain AS (
    SELECT a.tenant_id, a.seq, a.id, a.hash,
           sha256(a.prev_hash || eventgate_audit_content(a)) AS recomputed, a.prev_hash,
           lag(a.hash) OVER w AS previous_hash, lag(a.seq) OVER w AS previous_seq
    FROM audit_logs a
    WHERE %(tenant_id)s::uuid IS NULL OR a.tenant_id = %(tenant_id)s
    WINDOW w AS (PARTITION BY a.tenant_id ORDER BY a.seq)
)
SELECT DISTINCT ON (c.tenant_id) c.tenant_id, c.seq, c.id,
       'its hash, or its link to the entry before it, does not hold' AS reason
FROM chain c LEFT JOIN audit_checkpoints k ON k.tenant_id = c.tenant_id
WHERE c.hash <> c.recomputed
   OR c.prev_hash <> COALESCE(c.previous_hash, k.hash, ''::bytea)
   OR c.seq <> COALESCE(c.previous_seq, k.seq, 0) + 1
ORDER BY c.tenant_id, c.seq
"""

# Remove entries older than the retention, each tenant's last removed one becoming its
# checkpoint, in one statement (audit_logs_created_idx, then audit_logs_pkey per tenant).
TRIM = """
WITH cut AS (
    SELECT DISTINCT ON (tenant_id) tenant_id, seq, hash FROM audit_logs
    WHERE created_at < now() - make_interval(days => %(days)s)
    ORDER BY tenant_id, seq DESC
), checkpoint AS (
    INSERT INTO audit_checkpoints (tenant_id, seq, hash)
    SELECT tenant_id, seq, hash FROM cut
    ON CONFLICT (tenant_id) DO UPDATE
        SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, created_at = now()
)
DELETE FROM audit_logs a USING cut WHERE a.tenant_id = cut.tenant_id AND a.seq <= cut.seq
"""

# Each tenant whose chain does not end at its head: the last row (or, with every row trimmed,
# the checkpoint) must have the seq and hash audit_heads holds, so removing the newest rows
# shows (audit_heads_pkey, then audit_logs_pkey backwards for the last row).
VERIFY_TAIL = """
WITH tenants AS (
    SELECT tenant_id FROM audit_heads
    WHERE %(tenant_id)s::uuid IS NULL OR tenant_id = %(tenant_id)s
    UNION
    SELECT DISTINCT tenant_id FROM audit_logs
    WHERE %(tenant_id)s::uuid IS NULL OR tenant_id = %(tenant_id)s
)
SELECT t.tenant_id, coalesce(h.seq, 0) AS seq, last.id,
       CASE WHEN h.seq = coalesce(last.seq, k.seq, 0)
            THEN 'the last entry''s hash is not the one its head holds'
            ELSE 'the chain ends at seq ' || coalesce(last.seq, k.seq, 0)
                 || ', its head is at seq ' || coalesce(h.seq::text, 'none')
       END AS reason
FROM tenants t
LEFT JOIN audit_heads h ON h.tenant_id = t.tenant_id
LEFT JOIN audit_checkpoints k ON k.tenant_id = t.tenant_id
LEFT JOIN LATERAL (
    SELECT a.seq, a.id, a.hash FROM audit_logs a
    WHERE a.tenant_id = t.tenant_id ORDER BY a.seq DESC LIMIT 1
) last ON true
WHERE h.tenant_id IS NULL
   OR h.seq <> coalesce(last.seq, k.seq, 0)
   OR h.hash <> coalesce(last.hash, k.hash, ''::bytea)
ORDER BY t.tenant_id
"""

# Every tenant's head by name, or one tenant's (audit_heads_pkey, tenants_pkey).
HEADS = """
SELECT t.name AS tenant, h.seq, h.hash FROM audit_heads h JOIN tenants t ON t.id = h.tenant_id
WHERE %(tenant_id)s::uuid IS NULL OR h.tenant_id = %(tenant_id)s
ORDER BY t.name
"""

# The hash a tenant's chain holds at one seq: its row's, or the checkpoint's when retention
# removed that row last (audit_logs_pkey, audit_checkpoints_pkey).
HASH_AT = """
SELECT hash FROM audit_logs WHERE tenant_id = %(tenant_id)s AND seq = %(seq)s
UNION ALL
SELECT hash FROM audit_checkpoints WHERE tenant_id = %(tenant_id)s AND seq = %(seq)s
LIMIT 1
"""

# Where a tenant's chain starts now: the checkpoint's seq, 0 when nothing was trimmed.
TRIMMED_UP_TO = """
SELECT coalesce((SELECT seq FROM audit_checkpoints WHERE tenant_id = %(tenant_id)s), 0)
"""

# How many entries the chains hold (or one tenant's).
COUNT = """
SELECT count(*) FROM audit_logs WHERE %(tenant_id)s::uuid IS NULL OR tenant_id = %(tenant_id)s
"""


async def append(conn: AsyncConnection, entry: NewEntry) -> int:
    """Append an entry (inside the transaction of the change); returns its seq."""
    params = as_jsonb(msgspec.structs.asdict(entry), "before", "after")
    seq: int = await fetch_value(conn, APPEND, params)
    return seq


async def page(conn: AsyncConnection, tenant_id: uuid.UUID, filters: dict[str, Any]) -> list[Entry]:
    """Entries of the tenant, newest first, with the filters of PAGE (all keys required)."""
    return await fetch_all(conn, PAGE, {"tenant_id": tenant_id, **filters}, Entry)


async def verify(conn: AsyncConnection, tenant_id: uuid.UUID | None) -> tuple[int, list[Break]]:
    """How many entries were checked, and each chain's first broken row."""
    params = {"tenant_id": tenant_id}
    checked: int = await fetch_value(conn, COUNT, params)
    breaks = await fetch_all(conn, VERIFY, params, Break)
    broken = {b.tenant_id for b in breaks}
    tails = await fetch_all(conn, VERIFY_TAIL, params, Break)
    return checked, breaks + [b for b in tails if b.tenant_id not in broken]


async def heads(conn: AsyncConnection, tenant_id: uuid.UUID | None) -> list[Head]:
    """Each tenant's head (or one tenant's), by tenant name."""
    return await fetch_all(conn, HEADS, {"tenant_id": tenant_id}, Head)


async def hash_at(conn: AsyncConnection, tenant_id: uuid.UUID, seq: int) -> bytes | None:
    """The hash the tenant's chain holds at `seq`, None when it holds no such entry."""
    held: bytes | None = await fetch_value(conn, HASH_AT, {"tenant_id": tenant_id, "seq": seq})
    return held


async def trimmed_up_to(conn: AsyncConnection, tenant_id: uuid.UUID) -> int:
    """The last seq retention removed from the tenant's chain (0: none)."""
    trimmed: int = await fetch_value(conn, TRIMMED_UP_TO, {"tenant_id": tenant_id})
    return trimmed


async def trim(conn: AsyncConnection, retention_days: int) -> int:
    """Remove entries past the retention, keeping each chain verifiable; how many went."""
    cur = await conn.execute(TRIM, {"days": retention_days})
    return cur.rowcount
