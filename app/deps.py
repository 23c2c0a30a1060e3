"""The app's services, typed, and the `Annotated` dependency aliases that reach them.

The lifespan builds one `Services` per process and keeps it on `app.state.services`; routes
never read `app.state` themselves, they take `SessionDep`, `StorageDep`, ... (or, on the hot
webhook path that has no dependencies, call `services(request)`).

Every dependency is `async def`, even the trivial ones: FastAPI runs a plain `def` dependency in
the thread pool, which cost 8% of the webhook's CPU in a profile.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Protocol

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.processing.ingest import Intake
from app.processing.worker import EventWorker
from app.storage.base import BlobStore

if TYPE_CHECKING:
    from app.worker_children import WorkerChildren


class EventHints(Protocol):
    """Where new or replayed event ids go after their commit: the in-process worker, or a
    NOTIFY to worker processes."""

    def submit(self, event_ids: Iterable[uuid.UUID]) -> None: ...


@dataclass(slots=True)
class Services:
    """What the lifespan builds and closes: one of each per process (tests swap parts)."""

    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    intake: Intake
    blob_store: BlobStore
    worker: EventWorker  # started only when this process processes (WORKER_PROCESSES=0)
    hints: EventHints
    # Admits LARGE_BODIES_AT_ONCE large webhook bodies at a time (app/mandrill/routes.py).
    large_bodies: asyncio.Semaphore
    worker_children: WorkerChildren | None = None


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


async def get_settings_dep(request: Request) -> Settings:
    return services(request).settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    # Function scope: the session is closed before the response is sent, never after it.
    async with services(request).session_factory() as session:
        yield session


async def get_intake(request: Request) -> Intake:
    return services(request).intake


async def get_blob_store(request: Request) -> BlobStore:
    return services(request).blob_store


async def get_hints(request: Request) -> EventHints:
    return services(request).hints


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
IntakeDep = Annotated[Intake, Depends(get_intake)]
StorageDep = Annotated[BlobStore, Depends(get_blob_store)]
HintsDep = Annotated[EventHints, Depends(get_hints)]
