"""The `nats` destination: publish to a NATS JetStream subject; the delivery succeeds once the
stream has acknowledged it. `Nats-Msg-Id` lets the server drop a retry it already stored."""

from __future__ import annotations

import asyncio
from typing import Any

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext

from core.destination_configs import BROKER_SCHEMES, NatsConfig
from core.destinations import check_broker_url
from core.settings import Settings
from db.delivery_queue import Claimed
from workers.destinations.base import Connections, Message, Outcome, Try, describe


class NatsDestination:
    """One client per server URL."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clients: Connections[tuple[Client, JetStreamContext]] = Connections(
            self._open, self._close
        )

    async def send(self, delivery: Claimed, message: Message) -> Outcome:
        """Publish once; acknowledged by the stream, or a failed try."""
        config = delivery.config
        assert isinstance(config, NatsConfig)
        attempt = Try()
        try:
            check_broker_url(config.url, BROKER_SCHEMES["nats"], self.settings.broker_hosts)
            _, stream = await self.clients.get(config.url)
            # Per delivery, not per event: two endpoints on one stream each store the event.
            headers = {**message.headers, "Nats-Msg-Id": f"{message.id}.{delivery.endpoint_id}"}
            await stream.publish(
                config.subject,
                message.body,
                timeout=self.settings.delivery_timeout_seconds,
                headers=headers,
            )
        except Exception as exc:  # no stream for the subject, refused, down
            if not isinstance(
                exc, nats.js.errors.NoStreamResponseError | nats.errors.NoRespondersError
            ):
                await self.clients.drop(config.url)
            return attempt.failed(describe(exc, config.url))
        return attempt.acknowledged()

    async def _open(self, url: str) -> tuple[Client, JetStreamContext]:
        client = Client()
        timeout = self.settings.delivery_connect_timeout_seconds
        try:
            # Reconnecting is this module's job (a failed try drops the client); with no
            # attempts at all the library waits for ever on a server that is down.
            await asyncio.wait_for(
                client.connect(
                    servers=[url],
                    connect_timeout=timeout,
                    allow_reconnect=False,
                    max_reconnect_attempts=1,
                    reconnect_time_wait=0.1,
                    error_cb=_quiet,
                ),
                timeout * 2 + 1,
            )
        except BaseException:
            # A refused connect leaves the library's socket open: close it here.
            if client._transport is not None:
                client._transport.close()
            raise
        return client, client.jetstream()

    async def _close(self, opened: tuple[Client, JetStreamContext]) -> None:
        await opened[0].close()

    async def close(self) -> None:
        """Close every client."""
        await self.clients.close()


async def _quiet(error: Any) -> None:
    # A connection's errors reach the try that meets them; the library would print them.
    return None
