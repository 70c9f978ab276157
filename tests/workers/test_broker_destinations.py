"""Message brokers as destinations, against the real servers: RabbitMQ (publisher confirms),
NATS JetStream (acknowledged publish) and Redis Streams (XADD). Each delivery carries the
webhook's body and its signature headers; a broker that refuses the credentials, rejects the
message or is down fails the try like an HTTP 5xx: retried, dead-lettered, recovered."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import msgspec
import nats
import psycopg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from standardwebhooks.webhooks import Webhook

from app.main import create_app
from tests.brokers import PASSWORD, Broker, free_port
from tests.helpers import auth, event_body, make_key, running_worker, wait_for
from tests.workers.test_http_destinations import deliveries_of, dumped

KINDS = ("rabbitmq", "nats", "redis")


@pytest.fixture(params=KINDS)
def broker(request) -> Broker:
    """Each broker in turn."""
    return request.getfixturevalue(f"{request.param}_broker")


@pytest.fixture
async def broker_client(
    settings, broker, worker_env, monkeypatch
) -> AsyncIterator[AsyncTestClient]:
    """The API and the workers with the broker on the allow-list."""
    monkeypatch.setenv("EVENTGATE_BROKER_HOSTS", broker.address)
    allowed = msgspec.structs.replace(settings, broker_hosts=(broker.address,))
    async with AsyncTestClient(app=create_app(allowed)) as client:
        yield client


def config_for(broker: Broker, name: str, url: str | None = None) -> dict[str, Any]:
    """A destination config publishing to `name` (a routing key, subject or stream)."""
    url = url or broker.url
    if broker.kind == "rabbitmq":
        return {"kind": "rabbitmq", "url": url, "exchange": "events", "routing_key": name}
    if broker.kind == "nats":
        return {"kind": "nats", "url": url, "subject": f"events.{name}"}
    return {"kind": "redis", "url": url, "stream": name}


@contextlib.asynccontextmanager
async def consumer(broker: Broker, name: str) -> AsyncIterator[Any]:
    """What a tenant's consumer sets up: a bound queue, a stream for the subject, or nothing;
    yields a function returning every (body, headers) that arrived."""
    if broker.kind == "rabbitmq":
        connection = await aio_pika.connect(broker.url)
        channel = await connection.channel()
        exchange = await channel.declare_exchange("events", aio_pika.ExchangeType.DIRECT)
        queue = await channel.declare_queue(name, durable=True)
        await queue.bind(exchange, routing_key=name)

        async def taken() -> list[tuple[bytes, dict[str, Any]]]:
            found = []
            while (message := await queue.get(fail=False)) is not None:
                found.append((message.body, {**message.headers, "message-id": message.message_id}))
            return found

        try:
            yield _accumulating(taken)
        finally:
            await connection.close()
    elif broker.kind == "nats":
        client = await nats.connect(broker.url)
        stream = f"S{uuid.uuid4().hex}"
        await client.jetstream().add_stream(name=stream, subjects=[f"events.{name}"])

        async def stored() -> list[tuple[bytes, dict[str, Any]]]:
            info = await client.jetstream().stream_info(stream)
            found = []
            for seq in range(1, info.state.last_seq + 1):
                message = await client.jetstream().get_msg(stream, seq)
                found.append((message.data, dict(message.headers or {})))
            return found

        try:
            yield stored
        finally:
            await client.close()
    else:
        redis = Redis.from_url(broker.url)

        async def entries() -> list[tuple[bytes, dict[str, Any]]]:
            found = []
            for _, fields in await redis.xrange(name):
                decoded = {k.decode(): v for k, v in fields.items()}
                body = decoded.pop("body")
                found.append((body, {k: v.decode() for k, v in decoded.items()}))
            return found

        try:
            yield entries
        finally:
            await redis.aclose()


def _accumulating(take):
    """A queue's messages leave it when read: remember them."""
    seen: list[tuple[bytes, dict[str, Any]]] = []

    async def everything() -> list[tuple[bytes, dict[str, Any]]]:
        seen.extend(await take())
        return list(seen)

    return everything


async def create(client, key: str, config: dict[str, Any]) -> dict[str, Any]:
    answer = await client.post("/v1/endpoints", json={"config": config}, headers=auth(key))
    assert answer.status_code == 201, answer.text
    return answer.json()


async def test_each_broker_takes_signed_deliveries_with_its_acknowledgement(
    broker, broker_client, database_url
):
    client = broker_client
    key = await make_key(database_url)
    name = f"q{uuid.uuid4().hex[:8]}"
    created = await create(client, key, config_for(broker, name))
    endpoint, secret = created["endpoint"], created["secret"]
    assert endpoint["kind"] == broker.kind
    assert PASSWORD not in str(created)
    assert broker.address in endpoint["url"]  # the address, without the password
    assert endpoint["config"]["url"] == endpoint["url"]
    async with consumer(broker, name) as arrived:
        for n in range(3):
            await client.post("/v1/events", json=event_body(payload={"n": n}), headers=auth(key))
        test = await client.post(f"/v1/endpoints/{endpoint['id']}/test", headers=auth(key))
        assert test.status_code == 202, test.text
        async with running_worker():
            await wait_for(
                lambda: (
                    [r[0] for r in deliveries_of(database_url, endpoint["id"])] == ["succeeded"] * 4
                ),
                what="four acknowledged deliveries",
            )
        messages = await arrived()
    assert len(messages) == 4
    payloads = [msgspec.json.decode(body)["payload"] for body, _ in messages]
    assert sorted(p["n"] for p in payloads if "n" in p) == [0, 1, 2]
    assert [p["endpoint_id"] for p in payloads if "n" not in p] == [endpoint["id"]]  # test send
    for body, headers in messages:
        # Consumers verify exactly as webhook receivers do.
        Webhook(secret).verify(body, {k: str(v) for k, v in headers.items()})
        assert headers["content-type"] == "application/json"
    assert PASSWORD not in dumped(database_url)
    listed = await client.get("/v1/endpoints", params={"kind": broker.kind}, headers=auth(key))
    assert [e["id"] for e in listed.json()["endpoints"]] == [endpoint["id"]]


async def test_batches_beyond_the_connection_limit_wait_for_a_connection_and_all_arrive(
    broker, broker_client, database_url, monkeypatch
):
    # Three full batches at once, twenty connections a server: sends wait for a free
    # connection instead of failing ("Too many connections" was each try beyond redis-py's
    # hundredth), and every delivery is taken at its first try.
    monkeypatch.setenv("EVENTGATE_DELIVERY_MAX_CONNECTIONS", "20")
    client = broker_client
    key = await make_key(database_url, rate_limit_tier="unlimited")
    name = f"q{uuid.uuid4().hex[:8]}"
    endpoint_id = (await create(client, key, config_for(broker, name)))["endpoint"]["id"]
    events = [event_body(payload={"n": n}) for n in range(300)]
    answer = await client.post("/v1/events/batch", json={"events": events}, headers=auth(key))
    assert answer.status_code == 201, answer.text
    async with consumer(broker, name) as arrived:
        async with running_worker():
            await wait_for(
                lambda: all(r[0] != "pending" for r in deliveries_of(database_url, endpoint_id)),
                what="every delivery tried",
            )
        outcomes = {r[:2] for r in deliveries_of(database_url, endpoint_id)}
        assert outcomes == {("succeeded", 1)}, outcomes
        assert len(await arrived()) == 300


async def test_refused_rejected_or_down_fails_like_a_5xx_then_recovers(
    broker, broker_client, database_url
):
    client = broker_client
    key = await make_key(database_url)
    name = f"q{uuid.uuid4().hex[:8]}"
    refused = await create(client, key, config_for(broker, name, broker.url_with_password("no")))
    # No queue bound to the routing key / no stream for the subject / a key that is no stream.
    rejected = await create(client, key, config_for(broker, f"nobody{uuid.uuid4().hex[:8]}"))
    if broker.kind == "redis":
        redis = Redis.from_url(broker.url)
        await redis.set(rejected["endpoint"]["config"]["stream"], "a string")
        await redis.aclose()
    await client.post("/v1/events", json=event_body(), headers=auth(key))
    async with running_worker():
        for failing in (refused, rejected):
            endpoint_id = failing["endpoint"]["id"]
            await wait_for(lambda e=endpoint_id: deliveries_of(database_url, e)[0][0] == "dead")
    for failing in (refused, rejected):
        ((status, attempts, code, error),) = deliveries_of(database_url, failing["endpoint"]["id"])
        assert (status, attempts, code) == ("dead", 3, None)
        assert error
        assert PASSWORD not in error

    # The right credentials, then recover: the dead delivery goes again and is taken.
    endpoint_id = refused["endpoint"]["id"]
    path = f"/v1/endpoints/{endpoint_id}"
    patched = await client.patch(path, json={"config": config_for(broker, name)}, headers=auth(key))
    assert patched.status_code == 200, patched.text
    an_http_url = {"url": "https://example.com/hook"}
    refused_url = await client.patch(path, json=an_http_url, headers=auth(key))
    assert refused_url.status_code == 400
    assert refused_url.json()["error"]["details"]["field"] == "url"
    async with consumer(broker, name) as arrived:
        recovered = await client.post(
            f"{path}/recover", json={"since": "2000-01-01T00:00:00Z"}, headers=auth(key)
        )
        assert recovered.json()["recovered"] == 1
        async with running_worker():
            await wait_for(lambda: deliveries_of(database_url, endpoint_id)[0][0] == "succeeded")
        assert len(await arrived()) == 1


async def test_a_broker_that_is_down_fails_the_try(broker, broker_client, database_url):
    client = broker_client
    key = await make_key(database_url)
    port = free_port()
    down = broker.url.replace(f":{broker.port}", f":{port}")
    allowed = msgspec.structs.replace(
        client.app.state.settings, broker_hosts=(broker.address, f"127.0.0.1:{port}")
    )
    async with AsyncTestClient(app=create_app(allowed)) as other:
        endpoint = (await create(other, key, config_for(broker, "q", down)))["endpoint"]
        await other.post("/v1/events", json=event_body(), headers=auth(key))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EVENTGATE_BROKER_HOSTS", f"{broker.address},127.0.0.1:{port}")
        # A try slowed past the tests' 4 s lease on a loaded machine would be handed out again
        # (as it should be), and counted twice: this test counts the schedule's three tries.
        patch.setenv("EVENTGATE_DELIVERY_LEASE_SECONDS", "30")
        async with running_worker():
            await wait_for(lambda: deliveries_of(database_url, endpoint["id"])[0][0] == "dead")
    ((_, attempts, code, error),) = deliveries_of(database_url, endpoint["id"])
    assert (attempts, code) == (3, None)
    assert error
    assert PASSWORD not in error


async def test_brokers_are_refused_unless_the_operator_lists_them(client, database_url, broker):
    key = await make_key(database_url)
    body = {"config": config_for(broker, "q")}
    answer = await client.post("/v1/endpoints", json=body, headers=auth(key))
    assert answer.status_code == 400
    assert "EVENTGATE_BROKER_HOSTS" in answer.json()["error"]["message"]
    assert answer.json()["error"]["details"]["field"] == "config.url"
    with_url = {**body, "url": "https://example.com/hook"}
    assert (await client.post("/v1/endpoints", json=with_url, headers=auth(key))).status_code == 400
    wrong_scheme = {"config": {**config_for(broker, "q"), "url": "http://127.0.0.1:1/"}}
    assert (
        await client.post("/v1/endpoints", json=wrong_scheme, headers=auth(key))
    ).status_code == 400
    listed = await client.get("/v1/endpoints", headers=auth(key))
    assert listed.json()["endpoints"] == []


async def test_an_endpoint_keeps_its_kind(client, database_url, receiver):
    key = await make_key(database_url)
    created = await client.post(
        "/v1/endpoints", json={"url": receiver.endpoint_url("x")}, headers=auth(key)
    )
    path = f"/v1/endpoints/{created.json()['endpoint']['id']}"
    config = {"kind": "redis", "url": "redis://127.0.0.1:6379/0", "stream": "s"}
    answer = await client.patch(path, json={"config": config}, headers=auth(key))
    assert answer.status_code == 400
    assert answer.json()["error"]["details"]["field"] == "config.kind"
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT kind FROM endpoints").fetchone() == ("http",)


def test_an_error_never_quotes_the_password_of_the_address():
    from workers.destinations.base import describe

    url = "amqp://eventgate:p%40ss word@broker.internal/"
    failure = ConnectionError("cannot reach amqp://eventgate:p%40ss word@broker.internal/ now")
    assert "p%40ss word" not in describe(failure, url)
    assert "p@ss word" not in describe(ConnectionError("auth failed for p@ss word"), url)
    assert describe(ConnectionError("plain"), url) == "ConnectionError: plain"
