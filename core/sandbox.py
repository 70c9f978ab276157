"""Tenants' JavaScript, run outside the calling process: a few sandbox processes
(`core/sandbox_child.py`) per API or worker process, started on first use.

Why processes: the engine's CPU limit counts the whole process's CPU time, and some work
(a backtracking regular expression) ignores it altogether; in a process of its own a call's
CPU is its own, and a call past its wall-clock bound is ended by killing the process. The
event loop only writes and reads pipes. Each tenant may hold at most all but one of the
processes, so one tenant's endless loops cannot take every process from the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import sys
import time
from collections.abc import AsyncIterator
from typing import Any, Final

import msgspec

from core.metrics import TRANSFORMATION_SECONDS, TRANSFORMATIONS
from core.settings import Settings
from core.transformations import MAX_OUTPUT_BYTES

FRAME: Final = struct.Struct(">I")
# Beyond its CPU limit (load and call each have one), a call may wait this long for a core.
WALL_SLACK_SECONDS: Final = 1.0
# How long a new process may take to start (interpreter and engine loaded) on a loaded host;
# not counted in any call's bound.
STARTUP_SECONDS: Final = 30.0
# The least time a call waits for its tenant's share and a process before it fails as busy.
WAIT_FLOOR_SECONDS: Final = 0.25


class Verdict(msgspec.Struct, kw_only=True):
    """What a call gave: the handler's result as JSON text, or the error and its line in the
    tenant's code."""

    ok: bool
    output: str | None = None
    error: str | None = None
    line: int | None = None


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """What one call may use."""

    cpu_ms: int
    memory_bytes: int
    max_output_bytes: int


class _Child:
    """One sandbox process and its pipes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def ask(self, request: bytes) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(FRAME.pack(len(request)) + request)
        await self.process.stdin.drain()
        return await self.reply()

    async def reply(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        (size,) = FRAME.unpack(await self.process.stdout.readexactly(FRAME.size))
        return msgspec.json.decode(await self.process.stdout.readexactly(size), type=dict[str, Any])

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        await self.process.wait()


class Sandbox:
    """The sandbox processes of one event loop, shared fairly among tenants."""

    def __init__(self, processes: int, limits: Limits) -> None:
        self.limits = limits
        self._processes = processes
        self._idle: list[_Child] = []
        self._slots = asyncio.Semaphore(processes)
        self._per_tenant = max(1, processes - 1)
        self._wait_bound = max(WAIT_FLOOR_SECONDS, 2 * limits.cpu_ms / 1000)
        self._tenants: dict[Any, tuple[asyncio.Semaphore, int]] = {}
        self._closed = False

    async def run(
        self, tenant: Any, code: str, webhook: bytes, where: str, *, check_only: bool = False
    ) -> Verdict:
        """Call the code's handler(webhook) (or only load it) within the limits."""
        request = msgspec.json.encode(
            {
                "code": code,
                "input": webhook.decode(),
                "now_ms": int(time.time() * 1000),
                "cpu_ms": self.limits.cpu_ms,
                "memory": self.limits.memory_bytes,
                "max_output": self.limits.max_output_bytes,
                "check_only": check_only,
            }
        )
        started = time.perf_counter()
        verdict = await self._in_turn(tenant, request)
        TRANSFORMATION_SECONDS.labels(where).observe(time.perf_counter() - started)
        TRANSFORMATIONS.labels(where, "ok" if verdict.ok else "error").inc()
        return verdict

    async def _ask(self, request: bytes) -> Verdict:
        child = self._idle.pop() if self._idle else await self._start()
        if child is None:
            return Verdict(ok=False, error="the sandbox process could not start")
        bound = 2 * self.limits.cpu_ms / 1000 + WALL_SLACK_SECONDS
        try:
            reply = await asyncio.wait_for(child.ask(request), bound)
        except TimeoutError:
            await child.kill()
            return Verdict(ok=False, error="the transformation used more than its time")
        except (OSError, asyncio.IncompleteReadError, msgspec.DecodeError):
            await child.kill()
            return Verdict(ok=False, error="the sandbox process ended during the call")
        except BaseException:  # cancelled mid-call: the process may still be busy
            await asyncio.shield(child.kill())
            raise
        if self._closed:
            await child.kill()
        else:
            self._idle.append(child)
        return msgspec.convert(reply, Verdict)

    async def _in_turn(self, tenant: Any, request: bytes) -> Verdict:
        """Ask once the tenant's share and a process are free; a call that waits longer than
        the bound fails at once (and is retried later), so a tenant whose calls are slow holds
        its own work back, not the worker's lanes."""
        async with self._tenant_share(tenant) as gate, contextlib.AsyncExitStack() as held:
            try:
                async with asyncio.timeout(self._wait_bound):
                    await held.enter_async_context(gate)
                    await held.enter_async_context(self._slots)
            except TimeoutError:
                return Verdict(ok=False, error="this tenant's transformations are busy")
            return await self._ask(request)

    @contextlib.asynccontextmanager
    async def _tenant_share(self, tenant: Any) -> AsyncIterator[asyncio.Semaphore]:
        gate, users = self._tenants.get(tenant) or (asyncio.Semaphore(self._per_tenant), 0)
        self._tenants[tenant] = (gate, users + 1)
        try:
            yield gate
        finally:
            gate, users = self._tenants[tenant]
            if users == 1:
                del self._tenants[tenant]
            else:
                self._tenants[tenant] = (gate, users - 1)

    async def _start(self) -> _Child | None:
        """A new process once it says it is ready (None if it does not), so its start-up on
        a loaded host never counts against the first call's time."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "core.sandbox_child",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        child = _Child(process)
        try:
            await asyncio.wait_for(child.reply(), STARTUP_SECONDS)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, msgspec.DecodeError):
            await child.kill()
            return None
        except BaseException:
            await asyncio.shield(child.kill())
            raise
        return child

    async def close(self) -> None:
        """End every idle process (busy ones end when their call returns)."""
        self._closed = True
        idle, self._idle = self._idle, []
        for child in idle:
            assert child.process.stdin is not None
            child.process.stdin.close()
            await child.kill()


def sandbox_for(settings: Settings) -> Sandbox:
    """A sandbox with the settings' process count and limits."""
    limits = Limits(
        cpu_ms=settings.transformation_cpu_ms,
        memory_bytes=settings.transformation_memory_mb * 1024 * 1024,
        max_output_bytes=MAX_OUTPUT_BYTES,
    )
    return Sandbox(settings.transformation_processes, limits)
