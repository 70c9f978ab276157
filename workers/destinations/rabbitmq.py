"""The `rabbitmq` destination: publish to an exchange over AMQP 0-9-1 with publisher confirms;
the delivery succeeds only once the broker has confirmed the message (and, when mandatory, a
queue has taken it)."""

from __future__ import annotations

import asyncio

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection

from core.destination_configs import BROKER_SCHEMES, RabbitMqConfig
from core.destinations import check_broker_url
from core.settings import Settings
from db.delivery_queue import Claimed
from workers.destinations.base import Connections, Message, Outcome, Try, describe


class RabbitMqDestination:
    """One connection and confirming channel per broker URL."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.channels: Connections[tuple[AbstractConnection, AbstractChannel]] = Connections(
            self._open, self._close
        )

    async def send(self, delivery: Claimed, message: Message) -> Outcome:
        """Publish once; confirmed by the broker, or a failed try."""
        config = delivery.config
        assert isinstance(config, RabbitMqConfig)
        attempt = Try()
        try:
            check_broker_url(config.url, BROKER_SCHEMES["rabbitmq"], self.settings.broker_hosts)
            _, channel = await self.channels.get(config.url)
            exchange = (
                await channel.get_exchange(config.exchange, ensure=False)
                if config.exchange
                else channel.default_exchange
            )
            await exchange.publish(
                _amqp_message(message),
                routing_key=config.routing_key,
                mandatory=config.mandatory,
                timeout=self.settings.delivery_timeout_seconds,
            )
        except aio_pika.exceptions.PublishError:
            return attempt.failed("the broker returned the message: no queue is bound to it")
        except Exception as exc:  # down, refused credentials, closed channel: reconnect next time
            await self.channels.drop(config.url)
            return attempt.failed(describe(exc, config.url))
        return attempt.acknowledged()

    async def _open(self, url: str) -> tuple[AbstractConnection, AbstractChannel]:
        connection = await asyncio.wait_for(
            aio_pika.connect(url), self.settings.delivery_connect_timeout_seconds
        )
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        return connection, channel

    async def _close(self, opened: tuple[AbstractConnection, AbstractChannel]) -> None:
        await opened[0].close()

    async def close(self) -> None:
        """Close every connection."""
        await self.channels.close()


def _amqp_message(message: Message) -> aio_pika.Message:
    """The webhook as an AMQP message: the body, and the signature headers as headers."""
    return aio_pika.Message(
        message.body,
        headers=dict(message.headers),
        content_type="application/json",
        message_id=message.id,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
