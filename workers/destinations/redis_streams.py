"""The `redis` destination: append to a Redis stream (XADD, trimmed to about max_length
entries); the delivery succeeds once Redis answers with the entry's id.

A worker sends a whole batch at once, more than a plain pool lets open (redis-py's refuses a
caller beyond its hundredth connection with "Too many connections"): each server's connections
are bounded by EVENTGATE_DELIVERY_MAX_CONNECTIONS, and a send beyond them waits for a free one,
the whole try within the delivery timeout."""

from __future__ import annotations

import asyncio

from redis.asyncio import BlockingConnectionPool, Redis

from core.destination_configs import BROKER_SCHEMES, RedisConfig
from core.destinations import check_broker_url
from core.settings import Settings
from db.delivery_queue import Claimed
from workers.destinations.base import Connections, Message, Outcome, Try, describe


class RedisStreamDestination:
    """One client (and its connection pool) per server URL."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clients: Connections[Redis] = Connections(self._open, self._close)

    async def send(self, delivery: Claimed, message: Message) -> Outcome:
        """Append once; stored by Redis, or a failed try."""
        config = delivery.config
        assert isinstance(config, RedisConfig)
        attempt = Try()
        try:
            check_broker_url(config.url, BROKER_SCHEMES["redis"], self.settings.broker_hosts)
            client = await self.clients.get(config.url)
            fields: dict[str | bytes, str | bytes] = {"body": message.body, **message.headers}
            async with asyncio.timeout(self.settings.delivery_timeout_seconds):
                await client.xadd(config.stream, fields, maxlen=config.max_length, approximate=True)
        except Exception as exc:  # down, refused credentials, the key is not a stream
            return attempt.failed(describe(exc, config.url))
        return attempt.acknowledged()

    async def _open(self, url: str) -> Redis:
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=self.settings.delivery_max_connections,
            timeout=self.settings.delivery_timeout_seconds,
            socket_connect_timeout=self.settings.delivery_connect_timeout_seconds,
            socket_timeout=self.settings.delivery_timeout_seconds,
        )
        return Redis.from_pool(pool)  # the client owns the pool: closing one closes both

    async def _close(self, client: Redis) -> None:
        await client.aclose()

    async def close(self) -> None:
        """Close every client."""
        await self.clients.close()
