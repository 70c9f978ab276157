"""Every way a delivery leaves, behind one seam (`base.Destination`): each kind is a module
here, listed in KINDS; `workers/delivery.py` knows none of them.

A worker event loop holds one client per kind, made on first use and closed at shutdown. A kind's
module is imported on first use too: the broker libraries cost a second of every process's start,
and most workers never talk to a broker.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from core.encryption import UndecryptableSecret
from core.sandbox import Sandbox, sandbox_for
from core.settings import Settings
from db.delivery_queue import Claimed
from workers.destinations.base import Destination, Message, Outcome, describe

logger = logging.getLogger("eventgate.delivery")

KINDS: dict[str, tuple[str, str]] = {
    "http": ("workers.destinations.http", "HttpDestination"),
    "rabbitmq": ("workers.destinations.rabbitmq", "RabbitMqDestination"),
    "nats": ("workers.destinations.nats", "NatsDestination"),
    "redis": ("workers.destinations.redis_streams", "RedisStreamDestination"),
}


async def _client_of(kind: str, settings: Settings) -> Destination:
    """A new client of a kind, its module imported (in a thread: it takes a while, and the
    event loop has deliveries in flight) if this is the first."""
    module, name = KINDS[kind]
    loaded = sys.modules.get(module) or await asyncio.to_thread(importlib.import_module, module)
    made: Destination = getattr(loaded, name)(settings)
    return made


class Destinations:
    """The clients of one worker event loop, one per kind, and its transformation sandbox."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._clients: dict[str, Destination] = {}
        self._making = asyncio.Lock()
        self._sandbox: Sandbox | None = None

    @property
    def sandbox(self) -> Sandbox:
        """The sandbox endpoints' transformations run in (its processes start on first use)."""
        if self._sandbox is None:
            self._sandbox = sandbox_for(self.settings)
        return self._sandbox

    async def client(self, kind: str) -> Destination:
        """The client of a kind, made on first use."""
        found = self._clients.get(kind)
        if found is None:
            async with self._making:  # a batch's first deliveries wait for one client
                found = self._clients.get(kind)
                if found is None:
                    found = self._clients[kind] = await _client_of(kind, self.settings)
        return found

    async def send(self, delivery: Claimed, message: Message) -> Outcome:
        """Hand one delivery to its endpoint's kind (a kind's own fault fails this try only)."""
        try:
            client = await self.client(delivery.kind)
            return await client.send(delivery, message)
        except UndecryptableSecret:
            raise
        except Exception as exc:
            logger.exception("the %s destination failed on delivery %s", delivery.kind, delivery.id)
            return Outcome(False, None, None, describe(exc), 0, datetime.now(UTC))

    async def close(self) -> None:
        """Close every client made."""
        clients, self._clients = list(self._clients.values()), {}
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        if self._sandbox is not None:
            await self._sandbox.close()


_made: dict[Any, Destinations] = {}


def destinations_for(settings: Settings) -> Destinations:
    """The destinations of the running event loop for these settings."""
    key = (asyncio.get_running_loop(), settings)
    found = _made.get(key)
    if found is None:
        found = _made[key] = Destinations(settings)
    return found


async def close_destinations() -> None:
    """Close the destinations of the running event loop (at worker shutdown)."""
    loop = asyncio.get_running_loop()
    for key in [k for k in _made if k[0] is loop]:
        await _made.pop(key).close()
