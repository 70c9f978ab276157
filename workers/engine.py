"""The delivery engine: each worker process claims due deliveries continuously while there are
any, woken by NOTIFY (the first engine) or polling often (the others), and looks anyway every
poll interval.

Ingest and the API announce due work on `DELIVERIES_DUE_CHANNEL` (NOTIFY; ingest sends it after
its COMMIT), so an event costs no job and no lock. Per delivery queue a `QueueDispatcher` claims
a batch, hands it to a lane (send, then record) and claims again while lanes are free and
batches come back full. While it claims by itself, a dispatcher's claims promise to keep
claiming (delivery_claim_promises), so ingest committing meanwhile sends no NOTIFY; the claim
that finds it going quiet withdraws the promise, and it claims once more a grace later (for
what an ingest that read the promise committed meanwhile). Nothing depends on a notification
arriving: a dispatcher also claims every poll interval (due retries, leases of a killed worker
run out, a notification lost with a dropped connection), and a reconnected listener wakes
every dispatcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from core.queues import (
    BUSY_PROMISE_SECONDS,
    DELIVERIES_DUE_CHANNEL,
    DELIVERY_QUEUES,
    PROMISE_GRACE_SECONDS,
)
from core.settings import Settings
from db import delivery_queue
from db.delivery_queue import Claimed, Result
from db.pool import with_keepalives
from workers.delivery import claim, deliver_batch
from workers.destinations import destinations_for

logger = logging.getLogger("eventgate.engine")

# Longer than BUSY_PROMISE_SECONDS and the grace: the claim after a failed one comes after
# any promise it made has lapsed.
RECONNECT_SECONDS = 1.0
# Listener connections carry this name, so the engines of all workers can count each other.
LISTENER_NAME = "eventgate-delivery-engine"
# How often an engine counts the engines connected, and how often an engine that is not the
# first claims without being notified: the others take what the first leaves (a backlog it
# cannot keep up with, its batches when it dies) within this, without waking on every event.
PEERS_REFRESH_SECONDS = 2.0
FOLLOWER_POLL_SECONDS = 0.05
# A follower whose polls find nothing polls half as often each time, down to this: idle, its
# empty claims cost an eighth of what they did, and a backlog the first leaves still reaches
# it within this (plus FOLLOWER_LATE_SECONDS).
FOLLOWER_POLL_MOST_SECONDS = 0.4
# What the others claim: deliveries due this long at least, which the first, claiming every
# CLAIM_PACING_MOST_SECONDS at most while it keeps up, has left behind.
FOLLOWER_LATE_SECONDS = 0.1
# After a claim that found more than one delivery due (but not a full batch), wait this long
# per delivery found, up to the most, before the next: a quiet system, whose claims find one,
# is served at once, while under load each claim takes more. Each claim, send and record wakes
# a process and crosses a socket, which costs more CPU than the rest of a delivery: batches of
# about ten instead of two cut the worker's CPU per delivery by about a fifth. Above about
# 1 / CLAIM_PACING_SECONDS deliveries/s the wait reaches its most.
CLAIM_PACING_SECONDS = 0.003
CLAIM_PACING_MOST_SECONDS = 0.040


class QueueDispatcher:
    """Claims one queue's due deliveries and keeps up to `lanes` batches in flight."""

    def __init__(self, queue: str, pool: AsyncConnectionPool, settings: Settings) -> None:
        self.queue = queue
        self.pool = pool
        self.settings = settings
        self.due = asyncio.Event()
        self.lanes = asyncio.Semaphore(settings.worker_concurrency)
        self.in_flight: set[asyncio.Task[None]] = set()
        self.stopping = False
        self.poll_seconds = settings.delivery_poll_seconds
        self.late_seconds = 0.0  # claim only deliveries due this long (another engine listens)
        self.found = 0  # what the last claim found (several: it claims again by itself)
        self.empty_polls = 0  # claims in a row that found nothing (a follower backs off)

    @property
    def busy(self) -> bool:
        """The last claim found several: the next comes without a wake-up."""
        return self.found > 1

    def wake(self) -> None:
        """Claim again as soon as possible (a notification, a retry coming due)."""
        self.due.set()

    async def run(self) -> None:
        """Claim whenever woken, and every poll interval, until stopped."""
        self.due.set()  # whatever is due already when the worker starts
        while not self.stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.due.wait(), self.poll_wait())
            # Cleared before claiming: a notification from now on sets it again.
            self.due.clear()
            if not self.stopping:
                await self._claim_while_due()

    def poll_wait(self) -> float:
        """How long to wait for a wake-up before claiming anyway: the poll interval, backed
        off while a follower's polls find nothing."""
        if not self.late_seconds or not self.empty_polls:
            return self.poll_seconds
        backed_off = self.poll_seconds * 2 ** min(self.empty_polls, 8)
        most = min(FOLLOWER_POLL_MOST_SECONDS, self.settings.delivery_poll_seconds)
        return max(self.poll_seconds, min(backed_off, most))

    async def _claim_while_due(self) -> None:
        while not self.stopping:
            await self.lanes.acquire()
            if self.stopping:
                self.lanes.release()
                return
            # A busy engine claims again by itself: its claims promise to, so ingest need not
            # wake it. Only the listening engine promises (the others claim only what has
            # waited); each claim that leases several renews the promise, one that leases fewer
            # withdraws it.
            promise = 0.0 if self.late_seconds else BUSY_PROMISE_SECONDS
            was_busy = self.busy
            try:
                claimed = await claim(
                    self.pool, self.queue, self.settings, self.late_seconds, promise
                )
            except Exception as exc:
                self.lanes.release()
                self.found = 0
                _log_trouble("claiming", self.queue, exc)
                # The next claim comes after a promise the last one made has lapsed (and the
                # grace after it): it finds what ingest left unannounced meanwhile.
                await asyncio.sleep(RECONNECT_SECONDS)
                self.due.set()
                return
            self.empty_polls = 0 if claimed else self.empty_polls + 1
            if not claimed:
                self.lanes.release()
                self.found = 0
                self._follow_up(was_busy)
                return
            task = asyncio.create_task(self._deliver(claimed))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)
            # Work arrives faster than one claim a round trip: claim again by itself, after a
            # little has gathered, so claims grow with the load rather than their number.
            self.found = len(claimed)
            if len(claimed) < self.settings.delivery_batch_size:
                if not self.busy:
                    self._follow_up(was_busy)
                    return  # everything due was taken: wait for the next wake-up
                await asyncio.sleep(claim_pacing(len(claimed)))

    def _follow_up(self, was_busy: bool) -> None:
        """Going quiet after claiming by itself (a claim that withdrew the promise), claim once
        more a grace later: an ingest that read the promise before and skipped its NOTIFY
        has committed by then, or announced."""
        if was_busy and not self.late_seconds:  # only the listening engine promises
            asyncio.get_running_loop().call_later(PROMISE_GRACE_SECONDS, self.due.set)

    async def _deliver(self, claimed: Sequence[Claimed]) -> None:
        try:
            destinations = destinations_for(self.settings)
            results = await deliver_batch(self.pool, destinations, claimed, self.settings)
            self._wake_for_followers(claimed, results)
        except Exception as exc:
            # The leases run out and the deliveries go again: nothing is lost.
            _log_trouble("delivering a batch of", self.queue, exc)
        finally:
            self.lanes.release()

    def _wake_for_followers(self, claimed: Sequence[Claimed], results: Sequence[Result]) -> None:
        """An ordered endpoint's next event may go now; a retry due within the poll interval
        goes on time rather than at the next poll."""
        if any(c.ordered for c in claimed):
            self.due.set()
        loop = asyncio.get_running_loop()
        soonest = min(
            (r.delay_seconds for r in results if r.status == "failed"),
            default=self.settings.delivery_poll_seconds,
        )
        if soonest < self.settings.delivery_poll_seconds:
            loop.call_later(soonest, self.due.set)

    async def stop(self, graceful_seconds: float) -> None:
        """Claim nothing more; let the batches in flight finish (cancelled after the grace)."""
        self.stopping = True
        self.due.set()
        if self.in_flight:
            _, late = await asyncio.wait(set(self.in_flight), timeout=graceful_seconds)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)


class DeliveryEngine:
    """The dispatchers of a worker's delivery queues and the listener that wakes them.

    Engines count each other by their listener connections. Only the first (the oldest
    connection) LISTENs and answers every notification at once; the others keep their
    connection but not the channel, and claim every FOLLOWER_POLL_SECONDS instead. A quiet or
    steady flow that one worker keeps up with is served by the first alone, so a second
    worker never slows it down (every notification it heard would wake it and its Postgres
    backend for nothing); a backlog the first cannot keep up with is found by the others'
    polls, which claim while they find work; and when the first goes, the next takes its
    place at the next count.
    """

    def __init__(
        self, pool: AsyncConnectionPool, settings: Settings, queues: Sequence[str] | None
    ) -> None:
        served = [q for q in DELIVERY_QUEUES if queues is None or q in queues]
        self.settings = settings
        self.dispatchers = {q: QueueDispatcher(q, pool, settings) for q in served}
        self.pool = pool
        self.tasks: list[asyncio.Task[None]] = []
        self.listening = asyncio.Event()
        self.listener_pid = 0
        self.peers = (1, 0)  # engines connected, and this one's place among them

    def start(self) -> None:
        """Start claiming and listening (in the running event loop)."""
        if not self.dispatchers:
            return
        self.tasks = [asyncio.create_task(d.run()) for d in self.dispatchers.values()]
        self.tasks.append(asyncio.create_task(self._listen()))
        self.tasks.append(asyncio.create_task(self._count_peers()))

    async def stop(self, graceful_seconds: float) -> None:
        """Stop claiming, finish the batches in flight, stop listening."""
        await asyncio.gather(*(d.stop(graceful_seconds) for d in self.dispatchers.values()))
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _listen(self) -> None:
        url = make_conninfo(
            with_keepalives(self.settings.session_database_url()), application_name=LISTENER_NAME
        )
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                    self.listener_pid = conn.info.backend_pid
                    self.listening.set()
                    await self._listen_while_first(conn)
            except psycopg.Error as exc:
                self.listening.clear()
                self.peers = (1, 0)  # first until counted again: better two listening than none
                _log_trouble("listening for", "every", exc)
                await asyncio.sleep(RECONNECT_SECONDS)

    async def _listen_while_first(self, conn: psycopg.AsyncConnection) -> None:
        """LISTEN while this engine is the first, UNLISTEN while it is not (checked at each
        read, and as often as the engines are counted)."""
        channel = sql.Identifier(DELIVERIES_DUE_CHANNEL)
        listening = False
        while True:
            first = self.peers[1] == 0
            if first != listening:
                verb = sql.SQL("LISTEN {}" if first else "UNLISTEN {}")
                await conn.execute(verb.format(channel))
                listening = first
                self._follow(not first)
                self._wake_all()  # anything announced while no one listened
            timeout = PEERS_REFRESH_SECONDS
            if listening and any(d.busy for d in self.dispatchers.values()):
                # A busy dispatcher claims again by itself: rather than be woken by every
                # notification, read what has come once a pacing interval (an engine that
                # does not listen has none to read).
                await asyncio.sleep(CLAIM_PACING_MOST_SECONDS)
                timeout = 0.0
            async for note in conn.notifies(timeout=timeout, stop_after=1):
                dispatcher = self.dispatchers.get(note.payload)
                if dispatcher is not None:
                    dispatcher.wake()

    def _follow(self, following: bool) -> None:
        """Poll often for what another engine, listening, leaves behind; while this one
        listens, claim all that is due at the poll interval."""
        poll = self.settings.delivery_poll_seconds
        for dispatcher in self.dispatchers.values():
            dispatcher.poll_seconds = min(poll, FOLLOWER_POLL_SECONDS) if following else poll
            dispatcher.late_seconds = FOLLOWER_LATE_SECONDS if following else 0.0

    async def _count_peers(self) -> None:
        """Keep `peers` current: how many engines are connected, and this one's place."""
        while True:
            await asyncio.sleep(PEERS_REFRESH_SECONDS)
            if not self.listening.is_set():
                continue
            try:
                async with self.pool.connection() as conn:
                    pids = await delivery_queue.listening_engines(conn, LISTENER_NAME)
            except psycopg.Error as exc:
                _log_trouble("counting the engines of", "every", exc)
                continue
            if self.listener_pid in pids:
                self.peers = (len(pids), pids.index(self.listener_pid))

    def _wake_all(self) -> None:
        for dispatcher in self.dispatchers.values():
            dispatcher.wake()


def claim_pacing(found: int) -> float:
    """How long to wait after a claim that found `found` deliveries (but not a full batch)."""
    return min(CLAIM_PACING_MOST_SECONDS, found * CLAIM_PACING_SECONDS)


def _log_trouble(doing: str, queue: str, exc: BaseException) -> None:
    # A lost database is expected now and then (restarts, failovers): one line, no traceback.
    if isinstance(exc, psycopg.OperationalError):
        logger.warning("%s %s queue's deliveries failed, trying again: %s", doing, queue, exc)
    else:
        logger.exception("%s %s queue's deliveries failed", doing, queue)
