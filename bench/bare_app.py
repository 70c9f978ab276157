"""The framework ceiling for single-event ingest: a bare Litestar app whose one route runs the
same insert statement as POST /v1/events (no auth, no checks), served by uvicorn like Eventgate.

    BENCH_DATABASE_URL=... BENCH_TENANT_ID=... uvicorn bench.bare_app:create --factory

BENCH_POOL_MAX_SIZE sizes its pool (20, Eventgate's default).

With BENCH_ANSWER=eventgate the route answers what Eventgate's does, byte for byte in size: its
body (event id, time, status, message, request id) and the headers its API promises (RateLimit
and X-RateLimit-*, X-Request-ID, the security headers). That ceiling prices the answer itself.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from litestar import Litestar, Response, post

from bench.common import event_row
from db import events
from db.ids import new_id
from db.pool import open_pool

# The headers of an answer to a key whose tier counts every request (bench/ingest.py's).
LIMIT = 1_000_000_000
POLICY = f'"burst";q={LIMIT};w=1, "minute";q={LIMIT};w=60, "hour";q={LIMIT};w=3600, "day";q={LIMIT};w=86400'
SECURITY = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "frame-ancestors 'none'",
}


def eventgate_answer(event_id: uuid.UUID) -> Response[dict[str, Any]]:
    """The body and headers Eventgate answers an ingest with."""
    request_id = str(new_id())
    body = {
        "event_id": str(event_id),
        "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "status": "pending",
        "message": "event accepted",
        "request_id": request_id,
        "deliver_at": None,
    }
    headers = {
        "RateLimit-Policy": POLICY,
        "RateLimit": f'"burst";r={LIMIT - 1};t=1',
        "X-RateLimit-Limit": str(LIMIT),
        "X-RateLimit-Remaining": str(LIMIT - 1),
        "X-RateLimit-Reset": str(int(time.time()) + 1),
        "X-Request-ID": request_id,
        **SECURITY,
    }
    return Response(body, status_code=201, headers=headers)


def create() -> Litestar:
    """The bare app, reading its database, tenant and answer from BENCH_* variables."""
    tenant_id = uuid.UUID(os.environ["BENCH_TENANT_ID"])
    full_answer = os.environ.get("BENCH_ANSWER") == "eventgate"
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        max_size = int(os.environ.get("BENCH_POOL_MAX_SIZE", "20"))
        state["pool"] = await open_pool(os.environ["BENCH_DATABASE_URL"], max_size=max_size)
        yield
        await state["pool"].close()

    @post("/v1/events")
    async def ingest(data: dict[str, Any]) -> Response[dict[str, Any]] | dict[str, str]:
        row = event_row(tenant_id, data)
        async with state["pool"].connection() as conn:
            # The call POST /v1/events makes for a type with no schema (one autocommit
            # statement; with no endpoint there is nothing to announce).
            await events.insert_with_fan_out(conn, [row], only_unchecked=True, after_commit=True)
        return eventgate_answer(row.id) if full_answer else {"event_id": str(row.id)}

    return Litestar([ingest], lifespan=[lifespan])
