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

from bench.common import event_row
from db import events
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
        row = event_row(tenant_id, data)
        async with state["pool"].connection() as conn:
            await events.insert_with_fan_out(conn, [row])
        return {"event_id": str(row.id)}

    return Litestar([ingest], lifespan=[lifespan])
