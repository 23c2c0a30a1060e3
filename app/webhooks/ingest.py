"""Store a verified batch durably. The caller answers 200 only after `store_batch` returns."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.errors import ServiceUnavailable
from app.db.repositories.events import NewEvent, insert_new_events
from app.processing import metrics

P = ParamSpec("P")
T = TypeVar("T")

logger = structlog.get_logger("app.webhooks.ingest")

# Work on bigger bodies goes to a thread so one large message never stalls other requests.
THREAD_THRESHOLD_BYTES = 512 * 1024


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted_ids: list[uuid.UUID]
    duplicates: int


async def offload_if_large(size: int, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    if size >= THREAD_THRESHOLD_BYTES:
        return await asyncio.to_thread(func, *args, **kwargs)
    return func(*args, **kwargs)


async def store_batch(
    engine: AsyncEngine, events: Sequence[NewEvent], *, received: int
) -> IngestResult:
    """Insert the new events; durable when this returns. A database failure becomes a 503.

    `engine` is in autocommit mode (see `build_ingest_engine`). The connection is checked out
    here, only for the insert, so it is never held while a large body is read or parsed.
    """
    try:
        async with engine.connect() as connection:
            ids = await insert_new_events(connection, events)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        logger.warning("webhook.store_failed", exc_type=type(exc).__name__)
        raise ServiceUnavailable(
            "The event store is unavailable; the batch was not accepted. Retry later."
        ) from exc
    result = IngestResult(accepted_ids=ids, duplicates=received - len(ids))
    metrics.observe_stored(events, stored=len(ids), duplicates=result.duplicates)
    return result
