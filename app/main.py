"""The Litestar application: routes, middleware, error handling and lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib.metadata import version

from litestar import Litestar, Router
from litestar.datastructures import State
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from app.answers import finish_answer
from app.audit_logs.controllers import AuditLogController
from app.console.oidc import OidcClient
from app.console.rendering import TEMPLATES
from app.console.routes import CONSOLE_ROUTES
from app.deliveries.controllers import DeliveryController
from app.dependencies import DEPENDENCIES
from app.endpoints.controllers import EndpointController
from app.errors import EXCEPTION_HANDLERS
from app.event_types.controllers import EventTypeController
from app.event_types.services import SchemaCache
from app.events.controllers import EventController, InboxController
from app.events.services import Ingest
from app.events.stream_hub import StreamHub
from app.health import HealthController
from app.http_hygiene import COMPRESSION, cors_config
from app.invalidation import InvalidationListener
from app.keys.controllers import KeyController
from app.keys.verifier import KeyVerifier
from app.metrics import (
    MetricsController,
    SqlFigures,
    http_metrics_middleware,
    refresh_pool_gauges,
)
from app.openapi import StrictStructSchemaPlugin, docs_assets, openapi_config, openapi_json
from app.portal.controllers import PortalLinkController
from app.rate_limits.controllers import KeyRateLimitController, RateLimitTierController
from app.rate_limits.limiter import RateLimiter
from app.replica import ReplicaReads
from app.request_logs.buffer import RequestLogBuffer
from app.request_logs.controllers import RequestLogController
from app.schedules.controllers import ScheduleController
from app.scopes import check_request
from app.sources.controllers import SourceController, TriggerController
from app.sources.triggers import Triggers
from app.tracing import traced_middleware
from app.transformations.controllers import (
    EndpointTransformationController,
    SourceTransformationController,
)
from core import encryption
from core.encryption import Keyring
from core.sandbox import sandbox_for
from core.settings import Settings
from db.pool import open_pool


async def _replica_pool(settings: Settings) -> AsyncConnectionPool | None:
    """The read replica's pool, when one is set (its connections say who they are)."""
    if not settings.read_database_url:
        return None
    return await open_pool(
        make_conninfo(settings.read_database_url, application_name="eventgate-reads"),
        min_size=1,
        max_size=settings.pool_max_size,
        name="eventgate-reads",
        prepared=not settings.behind_pooler,
    )


@contextlib.asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    """Open the pools and start the background tasks for `app.state.settings`; close them."""
    # Read at startup rather than built in: a built app can be started again with other
    # settings of the same shape (the tests do, since building one costs more than most tests).
    settings: Settings = app.state.settings
    database_url = settings.require_database_url()
    encryption.install(Keyring.from_settings(settings))  # stored secrets open with these
    pool = await open_pool(
        database_url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        prepared=not settings.behind_pooler,
    )
    listener = InvalidationListener(settings.session_database_url())
    replica = await _replica_pool(settings)
    app.state.replica = ReplicaReads(pool, replica, settings.read_max_lag_seconds)
    verifier = KeyVerifier(pool, listener, settings.key_cache_ttl_seconds)
    app.state.pool = pool
    app.state.key_verifier = verifier
    app.state.listener = listener
    app.state.schemas = SchemaCache()
    app.state.ingest = Ingest(pool, settings, app.state.schemas)
    app.state.rate_limiter = RateLimiter(pool, settings, listener)
    app.state.streams = StreamHub(pool, listener, settings)
    app.state.sandbox = sandbox_for(settings)  # its processes start on first use
    app.state.triggers = Triggers(
        pool, app.state.ingest, app.state.rate_limiter, settings, app.state.sandbox
    )
    app.state.oidc = OidcClient(settings) if settings.oidc_issuer else None
    app.state.sql_figures = SqlFigures(app.state.replica, settings.metrics_cache_seconds)
    app.state.request_logs = RequestLogBuffer(pool, days_ahead=settings.partitions_ahead_days)
    background = [
        asyncio.create_task(app.state.request_logs.run()),
        asyncio.create_task(refresh_pool_gauges(pool)),
        asyncio.create_task(listener.run()),
        asyncio.create_task(verifier.flush_last_used_every(settings.last_used_flush_seconds)),
        asyncio.create_task(app.state.streams.heartbeat_every()),
    ]
    try:
        yield
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await verifier.flush_last_used()
        await app.state.request_logs.flush()
        await app.state.sandbox.close()
        if replica is not None:
            await replica.close()
        await pool.close()


def create_app(settings: Settings) -> Litestar:
    """Build the API for these settings; the pool opens and closes with the app's lifespan."""
    settings.require_database_url()
    return Litestar(
        route_handlers=[
            KeyController,
            EventController,
            InboxController,
            EventTypeController,
            EndpointController,
            DeliveryController,
            RateLimitTierController,
            KeyRateLimitController,
            SourceController,
            EndpointTransformationController,
            SourceTransformationController,
            ScheduleController,
            AuditLogController,
            RequestLogController,
            PortalLinkController,
            # Everything outside the API edge, which checks its routes itself.
            Router(
                "/",
                guards=[check_request],
                route_handlers=[
                    HealthController,
                    TriggerController,
                    MetricsController,
                    openapi_json,
                    docs_assets(),
                    *CONSOLE_ROUTES,
                ],
            ),
        ],
        template_config=TEMPLATES,
        lifespan=[lifespan],
        state=State({"settings": settings}),
        # The request's span, outermost, when the OTEL_* environment asks for traces.
        middleware=[*traced_middleware(), http_metrics_middleware],
        logging_config=None,  # core/logs.py configures every logger, Litestar's too
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[finish_answer],
        cors_config=cors_config(settings),
        compression_config=COMPRESSION,
        openapi_config=openapi_config(version("eventgate")),
        plugins=[StrictStructSchemaPlugin()],
    )
