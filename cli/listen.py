"""`eventgate listen`: follow an Eventgate's event stream and forward each event to a local
URL, signed exactly as a real delivery is, so a receiver's verification code runs unchanged."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp

from core.event_body import event_body
from core.secrets import new_endpoint_secret
from workers.signing import signature_header

# Waits before reconnecting after a lost stream: short at first, then no faster than this.
RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0)
FORWARD_TIMEOUT = aiohttp.ClientTimeout(total=15)


class StreamRefused(Exception):
    """The server answered the stream request with an error that retrying will not fix."""


def say(line: str) -> None:
    """One line for the developer, at once."""
    print(line, flush=True)


def signed_request(event: dict[str, Any], secret: str) -> tuple[bytes, dict[str, str]]:
    """The body and headers a real delivery of this event carries."""
    body = event_body(
        event["id"],
        event["source"],
        event["event_type"],
        event["payload"],
        event["metadata"],
        datetime.fromisoformat(event["created_at"]),
    )
    message_id, timestamp = event["id"], int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header([secret], message_id, timestamp, body),
    }
    return body, headers


async def sse_messages(response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, str]]:
    """The messages of a Server-Sent Events body, each as its fields (comments dropped)."""
    fields: dict[str, str] = {}
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if fields:
                yield fields
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = fields.get(name, "") + value.removeprefix(" ")


class Listener:
    """Follows the stream (reconnecting from the last event seen) and forwards each event."""

    def __init__(self, args: argparse.Namespace, secret: str) -> None:
        self.args = args
        self.secret = secret
        self.last_event_id: str | None = args.after
        self.types = set(args.types or ())

    def _stream_params(self) -> dict[str, str]:
        params = {name: getattr(self.args, name) for name in ("source", "channel")}
        if len(self.types) == 1:  # several types are filtered here, one by the server
            params["event_type"] = next(iter(self.types))
        return {name: value for name, value in params.items() if value}

    async def run(self) -> None:
        """Follow until cancelled; a lost stream is resumed after its last event."""
        url = self.args.url.rstrip("/") + "/v1/events/stream"
        failures = 0
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(sock_connect=10)) as http:
            while True:
                headers = {"X-API-Key": self.args.key}
                if self.last_event_id:
                    headers["Last-Event-ID"] = self.last_event_id
                try:
                    async with http.get(url, headers=headers, params=self._stream_params()) as r:
                        await self._check(r)
                        if failures:
                            say("Reconnected; resuming after the last event received.")
                        failures = 0
                        await self._follow(http, r)
                    reason = "the server ended the stream"
                except aiohttp.ClientError as exc:
                    reason = f"connection lost ({exc.__class__.__name__})"
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                failures += 1
                say(f"Stream interrupted: {reason}; reconnecting in {delay:g} s ...")
                await asyncio.sleep(delay)

    async def _check(self, response: aiohttp.ClientResponse) -> None:
        if response.status == 200:
            return
        text = await response.text()
        with contextlib.suppress(ValueError, KeyError, TypeError):
            text = json.loads(text)["error"]["message"]
        if response.status in (401, 403, 400, 404):
            raise StreamRefused(f"{response.status}: {text}")
        raise aiohttp.ClientResponseError(
            response.request_info, (), status=response.status, message=text
        )

    async def _follow(self, http: aiohttp.ClientSession, response: aiohttp.ClientResponse) -> None:
        async for message in sse_messages(response):
            if message.get("event") == "close":
                say(f"The server closed the stream: {message.get('data', '')}")
                return
            if "data" not in message:
                continue
            event = json.loads(message["data"])
            if not self.types or event["event_type"] in self.types:
                await self._forward(http, event)
            self.last_event_id = message.get("id", self.last_event_id)

    async def _forward(self, http: aiohttp.ClientSession, event: dict[str, Any]) -> None:
        body, headers = signed_request(event, self.secret)
        started = time.monotonic()
        try:
            async with http.post(
                self.args.forward_to, data=body, headers=headers, timeout=FORWARD_TIMEOUT
            ) as answer:
                outcome = str(answer.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            outcome = f"failed ({exc.__class__.__name__}: {exc})"
        millis = (time.monotonic() - started) * 1000
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        say(f"{stamp}  {event['event_type']}  {event['id']}  -> {outcome}  {millis:.0f} ms")


def run(args: argparse.Namespace) -> None:
    """The `listen` command: runs until Ctrl-C, which exits cleanly."""
    args.key = args.key or os.environ.get("EVENTGATE_API_KEY")
    if not args.key:
        raise SystemExit("eventgate listen: give --key (or set EVENTGATE_API_KEY)")
    secret = args.secret or new_endpoint_secret()
    say(f"Forwarding events from {args.url} to {args.forward_to}")
    say(f"Signed with {secret}  (verify with this secret; pass it as --secret to keep it)")
    try:
        asyncio.run(Listener(args, secret).run())
    except KeyboardInterrupt:
        say("Stopped.")
    except StreamRefused as exc:
        print(f"eventgate listen: the stream was refused: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
