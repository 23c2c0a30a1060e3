"""The dispatcher: sends pending notifications, one runner per destination.

A self-contained background service (`start`/`stop`) given settings, a session factory and
the blob store, like the event worker; any number of processes may run one against the same
database. Each runner claims a batch of its destination's due notifications under a lease
(SKIP LOCKED on PostgreSQL), sends them with at most NOTIFICATION_MAX_IN_FLIGHT requests at
a time, and records every attempt and outcome in one transaction. A slow consumer only slows
its own runner. Woken in-process by the outbox bell after a processing commit; otherwise it
looks every NOTIFICATION_POLL_SECONDS (what another process committed, retries falling due).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid

import aiohttp
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.db.base import utcnow
from app.destinations import metrics
from app.destinations.delivery import http_session, post_signed
from app.destinations.models import Destination
from app.destinations.outbox import NOTIFICATIONS_DUE
from app.destinations.repository import ClaimedNotification, NotificationRepository
from app.destinations.sending import Sent, active_secrets, build_bodies, email_gone, record
from app.storage.base import BlobStore

logger = structlog.get_logger("app.destinations.dispatcher")

BATCH_PER_IN_FLIGHT = 25
PIPELINE_DEPTH = 2
METRICS_REFRESH_SECONDS = 5.0
RELEASE_TIMEOUT_SECONDS = 5.0
CANCEL_WAIT_SECONDS = 1.0


class NotificationDispatcher:
    def __init__(
        self,
        *,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        blob_store: BlobStore,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.blob_store = blob_store  # links are signed Kave URLs; kept for presigned ones
        self.owner = f"{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._runners: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._http: aiohttp.ClientSession | None = None
        self._stopping = False
        self._gauge_labels: set[str] = set()

    @property
    def batch_size(self) -> int:
        return self.settings.notification_max_in_flight * BATCH_PER_IN_FLIGHT

    @property
    def lease_seconds(self) -> float:
        rounds = BATCH_PER_IN_FLIGHT * PIPELINE_DEPTH + 1
        return self.settings.notification_timeout_seconds * rounds + 30

    async def start(self) -> None:
        self._stopping = False
        self._http = http_session(
            timeout_seconds=self.settings.notification_timeout_seconds,
            allow_private=self.settings.private_networks_allowed,
        )
        self._wake = NOTIFICATIONS_DUE.subscribe()
        self._loop_task = asyncio.create_task(self._loop(), name="kave-dispatcher")
        logger.info("dispatcher.started", owner=self.owner)

    def poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        if self._wake is not None:
            NOTIFICATIONS_DUE.unsubscribe(self._wake)
            self._wake.set()
        tasks = [t for t in [self._loop_task, *self._runners.values()] if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: a task cancelled inside a call to a database that hangs takes seconds to
            # unwind (the release below is bounded too, and the worker stops meanwhile).
            await asyncio.wait(tasks, timeout=CANCEL_WAIT_SECONDS)
        self._runners.clear()
        if self._http is not None:
            await self._http.close()
        try:
            async with asyncio.timeout(RELEASE_TIMEOUT_SECONDS), self.session_factory() as session:
                released = await NotificationRepository(session).release_owned(owner=self.owner)
                await session.commit()
            if released:
                logger.info("dispatcher.released", notifications=released)
        except Exception as exc:  # noqa: BLE001 (the leases expire on their own)
            logger.warning("dispatcher.release_failed", exc_type=type(exc).__name__)
        logger.info("dispatcher.stopped")

    async def _loop(self) -> None:
        assert self._wake is not None
        refreshed = 0.0
        loop = asyncio.get_running_loop()
        while not self._stopping:
            self._wake.clear()
            try:
                await self.dispatch_once()
                if loop.time() - refreshed > METRICS_REFRESH_SECONDS:
                    refreshed = loop.time()
                    await self._refresh_gauges()
            except Exception as exc:  # noqa: BLE001 (the database may be down; try again)
                logger.warning("dispatcher.poll_failed", exc_type=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.notification_poll_seconds)

    async def dispatch_once(self) -> int:
        """Start a runner for each destination with due work and none running; how many."""
        async with self.session_factory() as session:
            due = await NotificationRepository(session).due_destinations(exclude=set(self._runners))
        for destination_id in due:
            task = asyncio.create_task(self._run(destination_id), name="kave-destination")
            self._runners[destination_id] = task
        return len(due)

    async def _run(self, destination_id: uuid.UUID) -> None:
        # Two batches at a time, sharing the destination's request limit: one is claimed,
        # built and recorded while the other's requests are out, so the database round trips
        # do not leave the destination idle.
        in_flight = asyncio.Semaphore(self.settings.notification_max_in_flight)

        async def drain() -> None:
            while not self._stopping and await self._send_batch(destination_id, in_flight):
                pass

        try:
            await asyncio.gather(*(drain() for _ in range(PIPELINE_DEPTH)))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 (leases expire; the next poll tries again)
            logger.warning(
                "dispatcher.batch_failed",
                destination_id=str(destination_id),
                exc_type=type(exc).__name__,
            )
        finally:
            self._runners.pop(destination_id, None)

    async def _send_batch(self, destination_id: uuid.UUID, in_flight: asyncio.Semaphore) -> bool:
        """Claim, send and record one batch; True if there may be more."""
        now = utcnow()
        async with self.session_factory() as session:
            destination = await session.get(Destination, destination_id)
            if destination is None or not destination.enabled:
                return False
            claimed = await NotificationRepository(session).claim(
                destination_id,
                owner=self.owner,
                limit=self.batch_size,
                lease_seconds=self.lease_seconds,
            )
            await session.commit()
            if not claimed:
                return False
            bodies = await build_bodies(session, self.settings, destination, claimed, now=now)
            # Leaving the block closes the session (its read ends); unlike a rollback, that
            # leaves `destination` readable while the batch is out.
        sent = await self._post_all(destination, claimed, bodies, in_flight)
        async with self.session_factory() as session:
            # Read again: an operator may have changed it while the batch was out. Locked
            # first, as a delete locks it before its notifications: the same order, no deadlock.
            fresh = await session.get(Destination, destination_id, with_for_update=True)
            if fresh is None:  # deleted meanwhile, its notifications with it
                return False
            await record(session, self.settings, fresh, sent, owner=self.owner)
            await session.commit()
            return fresh.enabled

    async def _post_all(
        self,
        destination: Destination,
        claimed: list[ClaimedNotification],
        bodies: dict[uuid.UUID, str | None],
        limit: asyncio.Semaphore,
    ) -> list[Sent]:
        assert self._http is not None
        http = self._http
        now = utcnow()
        secrets = active_secrets(destination, now)
        allow_private = self.settings.private_networks_allowed

        async def one(item: ClaimedNotification) -> Sent:
            body = bodies.get(item.id)
            if body is None:
                return Sent(item, email_gone())
            async with limit:
                result = await post_signed(
                    http,
                    url=destination.url,
                    secrets=secrets,
                    msg_id=item.webhook_id,
                    now=utcnow(),
                    body=body,
                    allow_private=allow_private,
                )
            return Sent(item, result)

        return list(await asyncio.gather(*(one(item) for item in claimed)))

    async def _refresh_gauges(self) -> None:
        async with self.session_factory() as session:
            rows = await NotificationRepository(session).pending_by_destination()
        now = utcnow()
        seen: set[str] = set()
        for destination_id, count, oldest in rows:
            label = str(destination_id)
            seen.add(label)
            metrics.PENDING.labels(destination=label).set(count)
            age = (now - oldest).total_seconds() if oldest is not None else 0.0
            metrics.OLDEST_PENDING_AGE.labels(destination=label).set(max(0.0, age))
        for label in self._gauge_labels - seen:  # drained since the last refresh
            metrics.PENDING.labels(destination=label).set(0)
            metrics.OLDEST_PENDING_AGE.labels(destination=label).set(0)
        self._gauge_labels = seen
