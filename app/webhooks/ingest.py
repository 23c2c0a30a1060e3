"""Store a verified batch durably. The caller answers 200 only after `store_batch` returns."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import ServiceUnavailable
from app.db.repositories.events import EventRepository, NewEvent

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
    session: AsyncSession, events: Sequence[NewEvent], *, received: int
) -> IngestResult:
    """Insert new events and commit. Any database failure becomes a 503 (Mailchimp retries)."""
    try:
        ids = await EventRepository(session).insert_new(events)
        await session.commit()
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        await _rollback_quietly(session)
        logger.warning("webhook.store_failed", exc_type=type(exc).__name__)
        raise ServiceUnavailable(
            "The event store is unavailable; the batch was not accepted. Retry later."
        ) from exc
    return IngestResult(accepted_ids=ids, duplicates=received - len(ids))


async def _rollback_quietly(session: AsyncSession) -> None:
    try:
        await session.rollback()
    except Exception:  # noqa: BLE001 (the connection is likely gone; the 503 is what matters)
        logger.debug("webhook.rollback_failed")
