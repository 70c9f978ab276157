"""One LISTEN connection per API process that tells in-process caches what changed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg
from psycopg import sql

logger = logging.getLogger("eventgate.invalidation")


class InvalidationListener:
    """Dispatches NOTIFY payloads to each channel's handler, reconnecting when the database
    goes away. While it is not listening, caches must not cache (they could miss a change)."""

    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        self._handlers: dict[str, Callable[[str], None]] = {}
        self._resets: list[Callable[[], None]] = []
        self.listening = False

    def subscribe(
        self, channel: str, on_message: Callable[[str], None], on_reset: Callable[[], None]
    ) -> None:
        """Call on_message for each payload on channel, on_reset whenever listening (re)starts
        or stops (anything cached meanwhile may have missed a notification)."""
        self._handlers[channel] = on_message
        self._resets.append(on_reset)

    def _reset(self) -> None:
        for reset in self._resets:
            reset()

    async def run(self) -> None:
        """Run for ever: listen on every subscribed channel, reconnecting on loss."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._database_url, autocommit=True
                ) as conn:
                    for channel in self._handlers:
                        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self._reset()
                    self.listening = True
                    async for note in conn.notifies():
                        self._handlers[note.channel](note.payload)
            except psycopg.Error as exc:
                logger.warning("invalidation listener lost its connection: %s", exc)
            finally:
                self.listening = False
                self._reset()
            await asyncio.sleep(1.0)
