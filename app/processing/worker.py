"""The in-process event worker: a bounded pool of consumers plus a recovery loop.

The webhook hands new event ids to `submit` after its commit (a hint, not a claim). Consumers
take what is queued in batches and claim each batch atomically before running it, so an id
seen twice runs once. The recovery loop claims whatever is due, including events left behind
by a crash (expired lease), with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas sharing a
database never take the same rows; while there is a backlog it claims again as soon as there
is room. Concurrency is bounded so processing never starves the acknowledgement path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.db.base import utcnow
from app.processing.context import ProcessingContext
from app.processing.inbox import EventRepository
from app.processing.tasks import Handler, process_events
from app.storage.base import BlobStore

logger = structlog.get_logger("app.processing.worker")

MAX_QUEUED_HINTS = 10_000
BACKLOG_POLL_SECONDS = 0.05
# The least time between two claims on wake-ups (see `_recover_loop`).
CLAIM_GATHER_SECONDS = 0.02
PURGE_INTERVAL_SECONDS = 3600.0
SHUTDOWN_GRACE_SECONDS = 10.0
RELEASE_TIMEOUT_SECONDS = 5.0

# What a domain asks the purge loop to run besides the engine's own payload purge (e.g. email
# retention); each hook reads its own settings from the context and does nothing when off.
PurgeHook = Callable[[ProcessingContext], Awaitable[None]]


class EventWorker:
    def __init__(
        self,
        *,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        blob_store: BlobStore,
        handlers: Mapping[str, Handler],
        purge_hooks: Sequence[PurgeHook] = (),
        idle_seconds: Callable[[], float] | None = None,
    ) -> None:
        # Handed in by the app: the engine runs whatever the domains register, by event kind.
        self.handlers = dict(handlers)
        self.purge_hooks = tuple(purge_hooks)
        # How long the recovery loop sleeps with nothing to do: a worker process that gets no
        # hints from a webhook in its own process polls often (or listens, and polls seldom).
        self._idle_seconds = idle_seconds or (lambda: settings.recovery_interval_seconds)
        self._wake = asyncio.Event()
        owner = f"{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.ctx = ProcessingContext(settings, session_factory, blob_store, owner)
        self._queue: asyncio.Queue[uuid.UUID] = asyncio.Queue()
        self._inflight: set[uuid.UUID] = set()
        self._consumers: list[asyncio.Task[None]] = []
        self._loops: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self.running = False

    @property
    def backlog(self) -> int:
        return len(self._inflight)

    async def start(self) -> None:
        self._stopping.clear()
        concurrency = self.ctx.settings.worker_concurrency
        self._consumers = [
            asyncio.create_task(self._consume(), name=f"kave-consumer-{i}")
            for i in range(concurrency)
        ]
        self._loops = [
            asyncio.create_task(self._recover_loop(), name="kave-recovery"),
            asyncio.create_task(self._purge_loop(), name="kave-purge"),
        ]
        self.running = True
        logger.info("worker.started", owner=self.ctx.owner, concurrency=concurrency)

    def wake(self) -> None:
        """Claim due events now (a notification from an acknowledge-only process)."""
        self._wake.set()

    def submit(self, event_ids: Iterable[uuid.UUID]) -> None:
        """Queue ids for processing. Hints past the cap are dropped: recovery finds them."""
        if not self.running:
            return
        for event_id in event_ids:
            if event_id in self._inflight or len(self._inflight) >= MAX_QUEUED_HINTS:
                continue
            self._inflight.add(event_id)
            self._queue.put_nowait(event_id)

    async def _consume(self) -> None:
        while True:
            # Whatever is queued, up to a batch: one claim and one commit for all of it. A
            # lone event is not held back waiting for company.
            batch = [await self._queue.get()]
            while len(batch) < self.ctx.settings.worker_batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await process_events(self.ctx, batch, self.handlers)
            except Exception as exc:
                logger.error("worker.consume_failed", exc_type=type(exc).__name__, exc_info=exc)
            finally:
                for event_id in batch:
                    self._inflight.discard(event_id)
                    self._queue.task_done()

    async def _recover_loop(self) -> None:
        woken = True
        claimed_at = -CLAIM_GATHER_SECONDS
        while not self._stopping.is_set():
            if woken:
                # Wake-ups in a burst (a NOTIFY per ingest commit) are gathered: each claim
                # then takes a batch's worth, not the one or two events committed since the
                # last. A wake-up after a quiet spell claims at once.
                gap = claimed_at + CLAIM_GATHER_SECONDS - time.monotonic()
                if gap > 0:
                    await asyncio.sleep(gap)
            self._wake.clear()  # a wake-up during the claim below claims again at once
            claimed_at = time.monotonic()
            more = False
            try:
                more = await self.recover_once(look_first=not woken)
            except Exception as exc:  # noqa: BLE001 (the database may be down; try again later)
                logger.warning("worker.recovery_failed", exc_type=type(exc).__name__)
            # A backlog (after a restart or an outage) is taken in as fast as the consumers
            # work it off, not one claim per interval.
            try:
                await asyncio.wait_for(
                    self._wake.wait(), BACKLOG_POLL_SECONDS if more else self._idle_seconds()
                )
                woken = True
            except TimeoutError:
                woken = more

    @property
    def _capacity(self) -> int:
        settings = self.ctx.settings
        return 2 * settings.worker_concurrency * settings.worker_batch_size - len(self._inflight)

    async def recover_once(self, *, look_first: bool = False) -> bool:
        """Claim due events up to the free capacity; True if there may be more to take.

        `look_first`: a poll on a timer reads before it writes, so an idle worker never
        takes SQLite's write lock from the webhook."""
        capacity = self._capacity
        if capacity <= 0:
            return True
        async with self.ctx.session_factory() as session:
            events = EventRepository(session)
            if look_first and not await events.any_due():
                return False
            ids = await events.claim_due(
                owner=self.ctx.owner,
                limit=capacity,
                lease_seconds=self.ctx.settings.event_lease_seconds,
            )
            await session.commit()
        # Ids already queued as the webhook's hints are no backlog of their own.
        fresh = [event_id for event_id in ids if event_id not in self._inflight]
        if fresh:
            logger.info("worker.recovered", events=len(fresh))
            self.submit(fresh)
        return bool(fresh) and len(ids) == capacity

    async def _purge_loop(self) -> None:
        while not self._stopping.is_set():
            await self.purge_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), PURGE_INTERVAL_SECONDS)

    async def purge_once(self) -> None:
        """Drop old payloads (EVENT_RETENTION_DAYS), then run each purge hook; a failure is
        logged and retried on the next round, and never stops the other hooks."""
        days = self.ctx.settings.event_retention_days
        if days > 0:
            try:
                async with self.ctx.session_factory() as session:
                    purged = await EventRepository(session).purge_payloads(
                        older_than=utcnow() - timedelta(days=days)
                    )
                    await session.commit()
                if purged:
                    logger.info("worker.payloads_purged", events=purged)
            except Exception as exc:  # noqa: BLE001
                logger.warning("worker.purge_failed", exc_type=type(exc).__name__)
        for hook in self.purge_hooks:
            try:
                await hook(self.ctx)
            except Exception as exc:  # noqa: BLE001 (the database or storage may be down)
                logger.warning(
                    "worker.purge_hook_failed",
                    hook=getattr(hook, "__qualname__", repr(hook)),
                    exc_type=type(exc).__name__,
                )

    async def stop(self) -> None:
        """Stop claiming, let running tasks finish for a grace period, hand the rest back."""
        self.running = False
        self._stopping.set()
        self._wake.set()
        for task in self._loops:
            task.cancel()
        # Queued hints that were never started are simply dropped: their rows say `received`.
        while not self._queue.empty():
            self._inflight.discard(self._queue.get_nowait())
            self._queue.task_done()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), SHUTDOWN_GRACE_SECONDS)
        for task in self._consumers:
            task.cancel()
        await asyncio.gather(*self._consumers, *self._loops, return_exceptions=True)
        try:
            # Bounded: a database that hangs (rather than refusing) must not hang the shutdown.
            async with (
                asyncio.timeout(RELEASE_TIMEOUT_SECONDS),
                self.ctx.session_factory() as session,
            ):
                released = await EventRepository(session).release_owned(owner=self.ctx.owner)
                await session.commit()
            if released:
                logger.info("worker.released", events=released)
        except Exception as exc:  # noqa: BLE001 (the leases expire on their own)
            logger.warning("worker.release_failed", exc_type=type(exc).__name__)
        logger.info("worker.stopped")
