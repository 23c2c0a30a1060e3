"""Replay: put a failed or processed event back in the queue so the worker runs it again."""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.events.errors import EventInProgress, EventNotFound, EventNotReplayable, PayloadPurged
from app.processing.inbox import EventRepository
from app.processing.models import EventStatus, WebhookEvent

logger = structlog.get_logger("app.events.replay")

REPLAYABLE = frozenset({EventStatus.FAILED.value, EventStatus.PROCESSED.value})
IN_PROGRESS = frozenset({EventStatus.RECEIVED.value, EventStatus.PROCESSING.value})


async def replayable_event(session: AsyncSession, event_id: uuid.UUID) -> WebhookEvent:
    """The event if it can be replayed now (without its payload); else the error saying why."""
    events = EventRepository(session)
    event = await events.get_without_payload(event_id)
    if event is None:
        raise EventNotFound()
    if event.status in IN_PROGRESS:
        raise EventInProgress()
    if event.status not in REPLAYABLE:
        raise EventNotReplayable(
            f"The event is '{event.status}'; only failed or processed events can be replayed."
        )
    if not await events.has_payload(event_id):
        raise PayloadPurged()
    return event


async def requeue_event(session: AsyncSession, event_id: uuid.UUID) -> WebhookEvent:
    """Back to `received` with its attempts reset, committed; returns the event as it is now.

    The caller hands the id to the worker; if it does not (or the process stops first), the
    recovery loop finds the event within RECOVERY_INTERVAL_SECONDS.
    """
    events = EventRepository(session)
    event = await replayable_event(session, event_id)
    if not await events.requeue(event_id):
        # Claimed or requeued by someone else between our read and our update.
        await session.rollback()
        raise EventInProgress()
    await session.commit()
    logger.info("event.replay_requested", event_id=str(event_id), previous_status=event.status)
    session.expunge(event)
    refreshed = await events.get_without_payload(event_id)
    assert refreshed is not None
    return refreshed
