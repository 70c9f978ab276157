"""Per-request bookkeeping (metrics, the access log, the request log) and GET /metrics for
Prometheus: this process's (or every API process's) counters, and figures read from SQL at
scrape time, reused for a few seconds so frequent scrapes stay cheap."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from psycopg_pool import AsyncConnectionPool

from app.client_ip import client_ip
from app.errors import Unauthorized
from app.replica import ReplicaReads
from app.request_id import request_id
from core import logs
from core.metrics import HTTP_DURATION, HTTP_REQUESTS, POOL, render_process_metrics
from core.queues import DELIVERY_QUEUES
from core.settings import Settings
from core.tasks import MAINTENANCE_TASKS
from db import metrics as sql_metrics
from db.ids import new_id
from db.request_logs import RequestLog

# Litestar adds "; charset=utf-8" to every text/* type itself.
CONTENT_TYPE = "text/plain; version=0.0.4"


# When the request reached its route (perf_counter), kept in the scope's state.
STARTED = "eventgate_started"
_STATUS = "eventgate_status"


def http_metrics_middleware(app: ASGIApp) -> ASGIApp:
    """Note when a routed request starts; `account_response` counts it once answered."""

    async def measured(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["state"][STARTED] = time.perf_counter()
        await app(scope, receive, send)

    return measured


def account_response(message: Message, scope: Scope) -> None:
    """As an answer goes out: count every answered request by route template and the status the
    client actually got (an exception handler's answer included), time it, and log it."""
    state = scope.get("state", {})
    if message["type"] == "http.response.start":
        state[_STATUS] = message["status"]
        return
    if message["type"] != "http.response.body" or message.get("more_body", False):
        return
    started = state.pop(STARTED, None)
    if started is None:  # not routed (404 before any route), or already counted
        return
    _account(scope, state.get(_STATUS, 500), time.perf_counter() - started)


# The labelled children of the request metrics, looked up once per route and status (a lookup
# takes a lock and builds a key on every call); routes are templates, so this stays small.
_SERIES: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def route_template(scope: Scope) -> str:
    """The route's template (`/v1/triggers/{token}`), never the path a client sent."""
    handler = scope.get("route_handler")
    return scope.get("path_template") or (min(handler.paths) if handler else "unmatched")


def _series(method: str, route: str, status: int) -> tuple[Any, Any]:
    key = (method, route, status)
    found = _SERIES.get(key)
    if found is None:
        found = _SERIES[key] = (
            HTTP_REQUESTS.labels(method, route, str(status)),
            HTTP_DURATION.labels(method, route),
        )
    return found


def _account(scope: Scope, status: int, took: float) -> None:
    route = route_template(scope)
    method = scope["method"]
    counted, timed = _series(method, route, status)
    counted.inc()
    timed.observe(took)
    app_state = scope["app"].state
    principal = scope.get("user")
    if principal is not None and app_state.settings.request_logs_enabled:
        app_state.request_logs.add(
            RequestLog(
                new_id(),
                principal.tenant_id,
                principal.key_id,
                method,
                route,
                status,
                round(took * 1000, 2),
                request_id(scope),
                client_ip(scope, app_state.settings.trusted_proxies),
                datetime.now(UTC),
            )
        )
    if app_state.settings.access_log:
        # The route template, never the path: a trigger's path holds its token.
        fields = {
            "method": method,
            "route": route,
            "status": status,
            "latency_ms": round(took * 1000, 2),
            "request_id": request_id(scope),
            "key_prefix": getattr(principal, "prefix", None),
        }
        logs.line("eventgate.access", "request", fields)


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


class SqlFigures:
    """The SQL-derived gauges, read at most every `cache_seconds`."""

    def __init__(self, reads: ReplicaReads, cache_seconds: float) -> None:
        self._reads = reads  # the replica while it is fresh: these are heavy reads
        self._cache_seconds = cache_seconds
        self._text = b""
        self._until = 0.0
        self._lock = asyncio.Lock()

    async def render(self) -> bytes:
        """The gauges as Prometheus text."""
        async with self._lock:
            if time.monotonic() >= self._until:
                registry = CollectorRegistry()
                registry.register(_Families(await self._read()))
                self._text = generate_latest(registry)
                self._until = time.monotonic() + self._cache_seconds
            return self._text

    async def _read(self) -> list[Metric]:
        pool = await self._reads.pool()
        async with pool.connection() as conn:
            queues = await sql_metrics.queues(conn)
            endpoints = await sql_metrics.endpoints(conn)
            keys = await sql_metrics.keys(conn)
            parts = await sql_metrics.partitions(conn)
            tasks = await sql_metrics.tasks(conn)
        due = GaugeMetricFamily("eventgate_deliveries_due", "Deliveries due now", labels=["queue"])
        backlog = GaugeMetricFamily(
            "eventgate_delivery_backlog_seconds",
            "How long the oldest due delivery of the queue has waited",
            labels=["queue"],
        )
        found = {figures.queue: figures for figures in queues}
        for queue in DELIVERY_QUEUES:  # every queue, at 0 while it has nothing due
            figures = found.get(queue)
            due.add_metric([queue], figures.due if figures else 0)
            backlog.add_metric([queue], figures.oldest_due_seconds if figures else 0.0)
        states = GaugeMetricFamily(
            "eventgate_endpoints", "Live endpoints by state", labels=["state"]
        )
        states.add_metric(["circuit_open"], endpoints.circuit_open)
        states.add_metric(["disabled"], endpoints.disabled)
        dead = GaugeMetricFamily("eventgate_dead_letters", "Deliveries out of tries")
        dead.add_metric([], endpoints.dead_letters)
        expiring = GaugeMetricFamily(
            "eventgate_api_keys_expiring", "Usable API keys that expire within 7 days"
        )
        expiring.add_metric([], keys.expiring_within_7_days)
        size = GaugeMetricFamily(
            "eventgate_partition_bytes", "Size of each partition", labels=["table", "partition"]
        )
        rows = GaugeMetricFamily(
            "eventgate_partition_rows",
            "Estimated rows of each partition",
            labels=["table", "partition"],
        )
        for part in parts:
            size.add_metric([part.parent_table, part.partition_name], part.total_bytes)
            rows.add_metric([part.parent_table, part.partition_name], part.estimated_rows)
        return [due, backlog, states, dead, expiring, size, rows, *_task_families(tasks)]


def _task_families(found: list[sql_metrics.TaskFigures]) -> list[Metric]:
    """Per maintenance task of the registry: failures, last success and period (the alert
    fires when a task has not succeeded within twice its period)."""
    failures = CounterMetricFamily(
        "eventgate_task_failures", "Runs of the maintenance task that failed", labels=["task"]
    )
    success = GaugeMetricFamily(
        "eventgate_task_last_success_timestamp_seconds",
        "When the maintenance task last succeeded (0: never)",
        labels=["task"],
    )
    period = GaugeMetricFamily(
        "eventgate_task_period_seconds", "How often the maintenance task is due", labels=["task"]
    )
    totals = {figures.task: figures for figures in found}
    for spec in MAINTENANCE_TASKS:
        figures = totals.get(spec.name)
        failures.add_metric([spec.name], figures.failures_total if figures else 0)
        success.add_metric([spec.name], (figures and figures.last_success_seconds) or 0.0)
        period.add_metric([spec.name], spec.period().total_seconds())
    return [failures, success, period]


async def refresh_pool_gauges(pool: AsyncConnectionPool, every: float = 5.0) -> None:
    """Keep this process's pool figures current (a background task of the lifespan)."""
    while True:
        stats = pool.get_stats()
        POOL.labels("size").set(stats.get("pool_size", 0))
        POOL.labels("idle").set(stats.get("pool_available", 0))
        POOL.labels("waiting").set(stats.get("requests_waiting", 0))
        await asyncio.sleep(every)


class MetricsController(Controller):
    """Prometheus scrapes here (with a bearer token when EVENTGATE_METRICS_TOKEN is set)."""

    path = "/metrics"
    include_in_schema = False

    @get("/", media_type=CONTENT_TYPE)
    async def scrape(self, request: Request) -> Response[bytes]:
        state = request.app.state
        _check_token(request, state.settings)
        body = render_process_metrics() + await state.sql_figures.render()
        return Response(body, media_type=CONTENT_TYPE)


def _check_token(request: Request, settings: Settings) -> None:
    if not settings.metrics_token:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token, settings.metrics_token):
        raise Unauthorized("/metrics needs Authorization: Bearer <EVENTGATE_METRICS_TOKEN>")
