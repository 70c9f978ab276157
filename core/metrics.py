"""The process's Prometheus metrics (prometheus-client), shared by the API and the workers.

Under `eventgate serve --workers N` every process writes its figures to
PROMETHEUS_MULTIPROC_DIR (set by the CLI before the processes start) and /metrics adds them up;
figures every process would see the same (queues, dead letters, partitions) are read from SQL
at scrape time instead (app/metrics.py).
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from core.destination_configs import KINDS

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)

HTTP_REQUESTS = Counter(
    "eventgate_http_requests",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "eventgate_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template",
    ["method", "route"],
    buckets=LATENCY_BUCKETS[:11],
)
EVENTS_INGESTED = Counter("eventgate_events_ingested", "Events accepted by the API")
RATE_LIMITED = Counter(
    "eventgate_rate_limited",
    "Requests answered 429, by policy (key tier, route, ip, trigger...)",
    ["policy"],
)
DELIVERIES = Counter(
    "eventgate_deliveries",
    "Delivery attempts written back, by destination kind and outcome (succeeded, failed:"
    " retried later, dead)",
    ["kind", "outcome"],
)
# Every policy a 429 can name and every delivery outcome, exported at 0 from the start, so a
# dashboard panel shows 0 rather than "No data" until the first one happens.
RATE_LIMIT_POLICIES = (
    *("burst", "minute", "hour", "day"),
    *("route-minute", "route-hour", "route-day"),
    *("anonymous", "wrong-secret", "trigger"),
)
for _policy in RATE_LIMIT_POLICIES:
    RATE_LIMITED.labels(_policy)
for _kind in KINDS:
    for _outcome in ("succeeded", "failed", "dead"):
        DELIVERIES.labels(_kind, _outcome)
DELIVERY_LATENCY = Histogram(
    "eventgate_event_to_delivered_seconds",
    "From an event's creation to its successful delivery",
    buckets=LATENCY_BUCKETS,
)
REQUEST_LOGS_DROPPED = Counter(
    "eventgate_request_logs_dropped",
    "Request-log rows dropped because the buffer was full (the database was slow or away)",
)
EVENT_STREAMS_OPEN = Gauge(
    "eventgate_event_streams_open",
    "GET /v1/events/stream connections open now, over the API processes",
    multiprocess_mode="livesum",
)
EVENT_STREAM_READS = Counter(
    "eventgate_event_stream_reads",
    "Pages of events read for streams (streams woken by one commit share a read)",
)
EVENT_STREAMS_CLOSED = Counter(
    "eventgate_event_streams_closed",
    "Event streams ended, by reason (client, slow_consumer, key_revoked, shutdown,"
    " database_unavailable)",
    ["reason"],
)
POOL = Gauge(
    "eventgate_db_pool_connections",
    "Database pool connections of the API processes, by state (size, idle, waiting clients)",
    ["state"],
    multiprocess_mode="livesum",
)


def render_process_metrics() -> bytes:
    """This process's metrics, or every process's when they share PROMETHEUS_MULTIPROC_DIR."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped upstream
        return generate_latest(registry)
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY)


TRANSFORMATIONS = Counter(
    "eventgate_transformations",
    "JavaScript transformations run, by where (endpoint, source, test) and result (ok, error)",
    ["where", "result"],
)
TRANSFORMATION_SECONDS = Histogram(
    "eventgate_transformation_duration_seconds",
    "Time to run a transformation in a sandbox process, waiting for one included",
    ["where"],
    buckets=LATENCY_BUCKETS[:11],
)
