"""Health routes: liveness, readiness (a database round trip) and both together."""

from __future__ import annotations

import threading
import time

import msgspec
from litestar import Controller, Response, get
from litestar.openapi import ResponseSpec
from psycopg_pool import AsyncConnectionPool

from app.dependencies import Pool

READY_TIMEOUT_SECONDS = 2.0
# Set when the process has been asked to stop but still serves for a moment (`eventgate serve`
# with EVENTGATE_SHUTDOWN_DRAIN_SECONDS): readiness says 503 so a balancer sends it nothing new.
DRAINING = threading.Event()


class DatabaseCheck(msgspec.Struct):
    """The database round trip: whether it worked and how long it took."""

    ok: bool
    latency_ms: float | None
    error: str | None = None


class Health(msgspec.Struct):
    """The answer of every health route."""

    status: str
    database: DatabaseCheck | None = None


async def check_database(pool: AsyncConnectionPool) -> DatabaseCheck:
    """Run SELECT 1 with a short timeout and measure it."""
    started = time.perf_counter()
    try:
        async with pool.connection(timeout=READY_TIMEOUT_SECONDS) as conn:
            await conn.execute("SELECT 1")
    except Exception as exc:
        return DatabaseCheck(False, None, type(exc).__name__)
    return DatabaseCheck(True, round((time.perf_counter() - started) * 1000, 2))


async def readiness(pool: AsyncConnectionPool) -> Response[Health]:
    """200 with the database latency, or 503 when the database does not answer or the
    process is draining before it stops."""
    if DRAINING.is_set():
        return Response(Health("draining"), status_code=503)
    database = await check_database(pool)
    status, code = ("ok", 200) if database.ok else ("unavailable", 503)
    return Response(Health(status, database), status_code=code)


NOT_READY = {
    503: ResponseSpec(
        data_container=Health, description="The database does not answer, or the process stops"
    )
}


class HealthController(Controller):
    """/health, /health/live, /health/ready: no authentication."""

    path = "/health"
    tags = ["health"]  # noqa: RUF012

    @get("/", summary="Liveness and readiness together", responses=NOT_READY)
    async def health(self, pool: Pool) -> Response[Health]:
        return await readiness(pool)

    @get("/live", summary="The process is up")
    async def live(self) -> Health:
        return Health("ok")

    @get("/ready", summary="The database answers (503 when it does not)", responses=NOT_READY)
    async def ready(self, pool: Pool) -> Response[Health]:
        return await readiness(pool)
