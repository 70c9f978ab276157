"""Per-kind delivery throughput for bench/deliver.py: for each message broker, the rate at which
Eventgate drains a backlog to it, next to the same client library's raw publish rate (the
same body and headers, acknowledged the same way) measured in the same run."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aio_pika
import aiohttp
import nats
import psycopg
from redis.asyncio import Redis

from tests.brokers import Broker, running_nats, running_rabbitmq, running_redis

RUNNERS = {"rabbitmq": running_rabbitmq, "nats": running_nats, "redis": running_redis}
NAME = "bench"
HEADERS = {
    "content-type": "application/json",
    "webhook-id": "msg_bench",
    "webhook-timestamp": "1700000000",
    "webhook-signature": "v1," + "A" * 44,
}


@contextlib.contextmanager
def running_brokers(kinds: list[str]) -> Iterator[dict[str, Broker]]:
    """Start the brokers asked for (the tests' own runners: Debian's servers on free ports)."""
    with contextlib.ExitStack() as stack:
        yield {kind: stack.enter_context(RUNNERS[kind]()) for kind in kinds}


def config_for(broker: Broker) -> dict[str, Any]:
    """An endpoint config publishing to the bench's queue, subject or stream."""
    if broker.kind == "rabbitmq":
        return {"kind": "rabbitmq", "url": broker.url, "exchange": "", "routing_key": NAME}
    if broker.kind == "nats":
        return {"kind": "nats", "url": broker.url, "subject": f"{NAME}.events"}
    return {"kind": "redis", "url": broker.url, "stream": NAME, "max_length": 1_000_000}


async def prepare(broker: Broker) -> None:
    """What a consumer would have set up: a queue, or a stream for the subject."""
    if broker.kind == "rabbitmq":
        connection = await aio_pika.connect(broker.url)
        async with connection:
            channel = await connection.channel()
            await channel.declare_queue(NAME, durable=True)
    elif broker.kind == "nats":
        client = await nats.connect(broker.url)
        await client.jetstream().add_stream(name="BENCH", subjects=[f"{NAME}.>"])
        await client.close()


async def publish_ceiling(broker: Broker, body: bytes, concurrency: int, seconds: float) -> float:
    """Acknowledged publishes per second from `concurrency` concurrent publishers."""
    publish, close = await _publisher(broker)
    done = 0
    deadline = time.perf_counter() + seconds

    async def publisher() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await publish(body)
            done += 1

    try:
        await asyncio.gather(*(publisher() for _ in range(concurrency)))
    finally:
        await close()
    return done / seconds


async def _publisher(
    broker: Broker,
) -> tuple[Callable[[bytes], Awaitable[Any]], Callable[[], Awaitable[Any]]]:
    if broker.kind == "rabbitmq":
        connection = await aio_pika.connect(broker.url)
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)

        async def to_rabbitmq(body: bytes) -> None:
            message = aio_pika.Message(body, headers=dict(HEADERS), message_id="m")
            await channel.default_exchange.publish(message, routing_key=NAME, mandatory=True)

        return to_rabbitmq, connection.close
    if broker.kind == "nats":
        client = await nats.connect(broker.url)
        stream = client.jetstream()

        async def to_nats(body: bytes) -> None:
            await stream.publish(f"{NAME}.ceiling", body, headers=dict(HEADERS))

        return to_nats, client.close
    redis = Redis.from_url(broker.url)

    async def to_redis(body: bytes) -> None:
        await redis.xadd(NAME, {"body": body, **HEADERS}, maxlen=1_000_000, approximate=True)

    return to_redis, redis.aclose


async def drain_rate(
    session: aiohttp.ClientSession,
    api: Callable[..., Awaitable[dict]],
    base: str,
    key: str,
    database_url: str,
    broker: Broker,
    events: int,
    body: dict[str, Any],
) -> float:
    """Queue `events` deliveries behind a disabled broker endpoint, enable it, time the drain
    (until the database records every one as acknowledged)."""
    created = await api(
        session, "POST", f"{base}/v1/endpoints", key, json={"config": config_for(broker)}
    )
    endpoint_id = created["endpoint"]["id"]
    await api(session, "POST", f"{base}/v1/endpoints/{endpoint_id}/disable", key)
    for start in range(0, events, 500):
        size = min(500, events - start)
        await api(session, "POST", f"{base}/v1/events/batch", key, json={"events": [body] * size})
    started = time.perf_counter()
    await api(session, "POST", f"{base}/v1/endpoints/{endpoint_id}/enable", key)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        while True:
            cursor = await conn.execute(
                "SELECT count(*) FROM deliveries WHERE endpoint_id = %s AND status = 'succeeded'",
                (endpoint_id,),
            )
            row = await cursor.fetchone()
            if row is not None and row[0] >= events:
                break
            await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - started
    await api(session, "DELETE", f"{base}/v1/endpoints/{endpoint_id}", key)
    return events / elapsed
