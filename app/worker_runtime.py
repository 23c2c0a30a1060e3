"""What processing needs, built in one place for the app's lifespan and for `kave worker`.

The engine (`app.processing`) knows no domain: the handlers the domains register by event kind
live here, beside the list of background services that run wherever events are processed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.audience.tasks import process_audience_event
from app.core.config import Settings
from app.db.session import build_engine, build_session_factory
from app.destinations.dispatcher import NotificationDispatcher
from app.emails.retention import purge_expired_emails
from app.mandrill.tasks import process_delivery, process_inbound, reject_invalid
from app.processing.models import EventKind
from app.processing.tasks import Handler
from app.processing.wakeups import Listener, is_postgres
from app.processing.worker import EventWorker, PurgeHook
from app.storage.base import BlobStore
from app.storage.factory import build_blob_store

DISPOSE_TIMEOUT_SECONDS = 5.0
logger = structlog.get_logger("app.worker_runtime")

# The engine runs what the domains register here, by the kind the webhook gave each event.
HANDLERS: dict[str, Handler] = {
    EventKind.INBOUND: process_inbound,
    EventKind.MESSAGE: process_delivery,
    EventKind.SYNC: process_delivery,
    EventKind.INVALID: reject_invalid,
    EventKind.AUDIENCE: process_audience_event,
}
# Run by the worker's purge loop (hourly) after its own payload purge.
PURGE_HOOKS: tuple[PurgeHook, ...] = (purge_expired_emails,)


class BackgroundService(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(slots=True)
class Stores:
    """The database and the blob store of one process."""

    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    blob_store: BlobStore


@asynccontextmanager
async def open_stores(settings: Settings) -> AsyncIterator[Stores]:
    engine = build_engine(settings)
    try:
        blob_store = await build_blob_store(settings)
        try:
            yield Stores(engine, build_session_factory(engine), blob_store)
        finally:
            await blob_store.close()
    finally:
        await dispose_engine(engine)


async def dispose_engine(engine: AsyncEngine) -> None:
    # Closing a pooled connection waits on the server: a database that hangs (rather than
    # refusing) must not hang the shutdown. The process exits; the server drops the sockets.
    try:
        async with asyncio.timeout(DISPOSE_TIMEOUT_SECONDS):
            await engine.dispose()
    except TimeoutError:
        logger.warning("app.engine_dispose_timed_out", seconds=DISPOSE_TIMEOUT_SECONDS)


@dataclass(slots=True)
class ProcessingRuntime:
    """The EventWorker and every service that runs beside it: started in order, stopped all
    at once. Each stop is bounded on its own (a grace period, a release with a timeout), so
    together they take as long as the slowest, not the sum: with a database that hangs, the
    worker's grace and the dispatcher's release would otherwise add up. Nothing handed on is
    lost by it: what the worker commits last waits in the outbox for the next dispatcher."""

    worker: EventWorker
    services: list[BackgroundService] = field(default_factory=list)

    async def start(self) -> None:
        for service in self.services:
            await service.start()

    async def stop(self) -> None:
        async def stop(service: BackgroundService) -> None:
            try:
                await service.stop()
            except Exception as exc:  # stop the others all the same
                logger.error("runtime.stop_failed", service=type(service).__name__, exc_info=exc)

        await asyncio.gather(*(stop(service) for service in self.services))


def build_processing_runtime(
    settings: Settings, stores: Stores, *, standalone: bool
) -> ProcessingRuntime:
    """The processing of one process. `standalone`: a worker process, which gets no hints
    from a webhook of its own: it listens for NOTIFY on PostgreSQL and polls on SQLite."""
    listener: Listener | None = None

    def idle_seconds() -> float:
        if listener is not None and listener.connected:
            return settings.recovery_interval_seconds
        return min(settings.worker_poll_seconds, settings.recovery_interval_seconds)

    worker = EventWorker(
        settings=settings,
        session_factory=stores.session_factory,
        blob_store=stores.blob_store,
        handlers=HANDLERS,
        purge_hooks=PURGE_HOOKS,
        idle_seconds=idle_seconds if standalone else None,
    )
    services: list[BackgroundService] = [worker]
    if standalone and is_postgres(settings.database_url):
        listener = Listener(settings.database_url, worker.wake)
        services.append(listener)
    # Every other service that must run wherever the EventWorker runs goes here: the
    # lifespan and `kave worker` start and stop this list.
    services.append(
        NotificationDispatcher(
            settings=settings, session_factory=stores.session_factory, blob_store=stores.blob_store
        )
    )
    return ProcessingRuntime(worker, services)
