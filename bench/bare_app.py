"""The framework ceiling for single-event ingest: a bare Litestar app whose one route runs the
same insert statement as POST /v1/events (no auth, no checks), served by uvicorn like Eventgate.

    BENCH_DATABASE_URL=... BENCH_TENANT_ID=... uvicorn bench.bare_app:create --factory
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, post

from db import events
from db.ids import new_id
from db.pool import open_pool


def create() -> Litestar:
    """The bare app, reading its database and tenant from BENCH_* variables."""
    tenant_id = uuid.UUID(os.environ["BENCH_TENANT_ID"])
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        state["pool"] = await open_pool(os.environ["BENCH_DATABASE_URL"], max_size=20)
        yield
        await state["pool"].close()

    @post("/v1/events")
    async def ingest(data: dict[str, Any]) -> dict[str, str]:
        row = events.NewEvent(
            id=new_id(),
            tenant_id=tenant_id,
            source=data["source"],
            event_type=data["event_type"],
            payload=data["payload"],
            metadata={"priority": "normal"},
            idempotency_key=None,
            correlation_id=None,
            priority="normal",
        )
        async with state["pool"].connection() as conn:
            await events.insert_with_fan_out(conn, [row])
        return {"event_id": str(row.id)}

    return Litestar([ingest], lifespan=[lifespan])
