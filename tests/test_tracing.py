"""OpenTelemetry traces, exported by real `eventgate serve` and `eventgate worker` processes
to a real OTLP/HTTP receiver: one connected trace from a producer's `traceparent` through
ingest, fan-out and each attempt to the receiver's request and a broker's message; no span
carries a payload or a secret; with tracing off nothing is stored or forwarded."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid

import httpx
import psycopg

from core.tracing import wanted
from tests.brokers import PASSWORD, Broker
from tests.helpers import ROOT, api_process, auth, make_key, running_worker, wait_for
from tests.otlp import ExportedSpan, running_collector
from tests.workers.test_broker_destinations import config_for, consumer

PRODUCER_TRACE = secrets.token_hex(16)
PRODUCER_SPAN = secrets.token_hex(8)
MARKER = "payload-marker-7f3c"


def parent_of(traceparent: str) -> tuple[str, str]:
    """The trace id and parent span id a `traceparent` header names."""
    version, trace_id, span_id, flags = traceparent.split("-")
    assert (version, flags) == ("00", "01")
    return trace_id, span_id


def one(spans: list[ExportedSpan], name: str, **attributes: object) -> ExportedSpan:
    found = [
        s
        for s in spans
        if s.name == name and all(s.attributes.get(k) == v for k, v in attributes.items())
    ]
    assert len(found) == 1, (name, attributes, [s.name for s in spans])
    return found[0]


async def test_one_trace_runs_from_the_producer_through_each_attempt_to_the_receivers(
    worker_env, receiver, rabbitmq_broker: Broker, tmp_path
):
    database_url = worker_env
    key = await make_key(database_url)
    with running_collector() as collector:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "EVENTGATE_BROKER_HOSTS": rabbitmq_broker.address,
        }
        with (tmp_path / "worker.log").open("ab") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "cli", "worker"],
                env={**os.environ, **env},
                cwd=ROOT,
                stderr=log,
            )
        try:
            with api_process(database_url, **env) as base:
                async with httpx.AsyncClient(base_url=base, headers=auth(key)) as api:
                    await traced_deliveries(api, collector, receiver, rabbitmq_broker, key)
                    await traced_trigger(api, collector)
        finally:
            worker.terminate()
            worker.wait(timeout=30)


async def traced_deliveries(api, collector, receiver, broker: Broker, key: str) -> None:
    created = await api.post("/v1/endpoints", json={"url": receiver.endpoint_url("hook")})
    receiver.secrets["hook"] = [created.json()["secret"]]
    receiver.scripts["hook"] = [500]  # the first try fails: two attempts, one trace
    name = f"q{uuid.uuid4().hex[:8]}"
    async with consumer(broker, name) as messages:
        queued = await api.post("/v1/endpoints", json={"config": config_for(broker, name)})
        assert queued.status_code == 201, queued.text
        sent = await api.post(
            "/v1/events",
            json={"source": "shop", "event_type": "order.paid", "payload": {"note": MARKER}},
            headers={"traceparent": f"00-{PRODUCER_TRACE}-{PRODUCER_SPAN}-01"},
        )
        assert sent.status_code == 201, sent.text
        event_id = sent.json()["event_id"]
        await wait_for(lambda: len(receiver.at("hook")) == 2, timeout=30, what="both tries")
        await wait_for(messages, timeout=30, what="the broker's message")
        [(_, broker_headers)] = await messages()

    def whole() -> bool:
        names = [s.name for s in collector.of_trace(PRODUCER_TRACE)]
        return names.count("eventgate.deliver http") == 2 and "eventgate.deliver rabbitmq" in names

    await wait_for(whole, timeout=30, what="every span of the trace exported")
    spans = collector.of_trace(PRODUCER_TRACE)

    ingest = one(spans, "POST /v1/events")
    assert (ingest.service, ingest.kind) == ("eventgate-api", "server")
    assert ingest.parent_span_id == PRODUCER_SPAN  # continues the producer's span
    assert ingest.attributes["http.response.status_code"] == 201
    fan_out = one(spans, "eventgate.fan_out")
    assert fan_out.parent_span_id == ingest.span_id
    assert fan_out.attributes["eventgate.event.id"] == event_id

    first = one(spans, "eventgate.deliver http", **{"eventgate.attempt": 1})
    second = one(spans, "eventgate.deliver http", **{"eventgate.attempt": 2})
    queued_span = one(spans, "eventgate.deliver rabbitmq")
    for attempt in (first, second, queued_span):
        assert attempt.service == "eventgate-worker"
        assert attempt.parent_span_id == fan_out.span_id  # across the queue, same trace
        assert attempt.attributes["eventgate.event.id"] == event_id
        assert attempt.attributes["eventgate.queue_wait_ms"] >= 0
    assert (first.kind, first.status_code, first.attributes["eventgate.outcome"]) == (
        "client",
        2,
        "failed",
    )
    assert first.attributes["http.response.status_code"] == 500
    assert (second.status_code, second.attributes["eventgate.outcome"]) == (0, "succeeded")
    assert queued_span.kind == "producer"

    # Each receiver's request continues its own attempt's span.
    tried = [parent_of(r.headers["traceparent"]) for r in receiver.at("hook")]
    assert tried == [(PRODUCER_TRACE, first.span_id), (PRODUCER_TRACE, second.span_id)]
    assert parent_of(broker_headers["traceparent"]) == (PRODUCER_TRACE, queued_span.span_id)

    everything = repr([s.attributes for s in collector.spans] + [s.name for s in collector.spans])
    for secret in (MARKER, key, PASSWORD, receiver.secrets["hook"][0]):
        assert secret not in everything


async def traced_trigger(api, collector) -> None:
    """A provider's webhook to a source: its span names the route, never the token."""
    body = {"name": "stripe", "verification": {"scheme": "none"}, "event_type": "payment"}
    source = (await api.post("/v1/sources", json=body)).json()["source"]
    trace_id = secrets.token_hex(16)
    headers = {"traceparent": f"00-{trace_id}-{PRODUCER_SPAN}-01"}
    accepted = await api.post(source["trigger_path"], json={"id": 1}, headers=headers)
    assert accepted.status_code == 202, accepted.text

    def stored() -> bool:
        return "eventgate.fan_out" in {s.name for s in collector.of_trace(trace_id)}

    await wait_for(stored, timeout=30, what="the trigger's spans")
    trigger = one(collector.of_trace(trace_id), "POST /v1/triggers/{token}")
    assert trigger.parent_span_id == PRODUCER_SPAN
    fan_out = one(collector.of_trace(trace_id), "eventgate.fan_out")
    assert fan_out.parent_span_id == trigger.span_id
    token = source["trigger_path"].rsplit("/", 1)[1]
    assert token not in repr([(s.name, s.attributes) for s in collector.spans])


async def test_with_tracing_off_nothing_is_stored_or_forwarded(
    client, database_url, worker_env, receiver
):
    key = await make_key(database_url)
    created = await client.post(
        "/v1/endpoints", json={"url": receiver.endpoint_url("plain")}, headers=auth(key)
    )
    receiver.secrets["plain"] = [created.json()["secret"]]
    incoming = {**auth(key), "traceparent": f"00-{PRODUCER_TRACE}-{PRODUCER_SPAN}-01"}
    body = {"source": "shop", "event_type": "order.paid", "payload": {}}
    sent = await client.post("/v1/events", json=body, headers=incoming)
    assert sent.status_code == 201
    async with running_worker():
        await wait_for(lambda: receiver.at("plain"), what="the delivery")
    [arrived] = receiver.at("plain")
    assert arrived.verified
    assert "traceparent" not in arrived.headers
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT traceparent FROM events WHERE id = %s", (sent.json()["event_id"],)
        ).fetchone()
    assert stored == (None,)


def test_the_standard_environment_turns_tracing_on_and_off():
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert wanted({}) is None  # off by default
    assert wanted(endpoint) == "otlp"
    assert wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}) == "otlp"
    assert wanted({**endpoint, "OTEL_SDK_DISABLED": "true"}) is None
    assert wanted({**endpoint, "OTEL_TRACES_EXPORTER": "none"}) is None
    assert wanted({"OTEL_TRACES_EXPORTER": "console"}) == "console"
    assert wanted({**endpoint, "OTEL_TRACES_EXPORTER": "zipkin"}) is None
