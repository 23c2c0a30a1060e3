"""How a task says what happened, and how what it produced is committed.

A handler returns `Records` or raises one of the `TaskOutcome` exceptions; anything else it
raises is treated as retryable (an outage, a bug that a fix and a replay will cure).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.processing.context import ProcessingContext
from app.processing.inbox import ClaimedEvent, EventRepository


class TaskOutcome(Exception):
    """A task ending other than with records; the subclass says what the engine does next."""


class EventIgnored(TaskOutcome):
    """An authentic event Kave deliberately does nothing with: `ignored`."""


class PermanentFailure(TaskOutcome):
    """Retrying cannot help (the event itself is wrong): straight to `failed`."""


class RetryableFailure(TaskOutcome):
    """Worth another attempt later, with backoff, until the attempts run out."""


class LeaseLost(TaskOutcome):
    """Another worker took the event over (our lease expired); our writes were rolled back."""


# Writes the records of every event of one batch that names it, in the batch's transaction
# (after their events were marked processed); returns what to run once that transaction has
# committed (a wake-up call), or None.
AfterCommit = Callable[[], None]
Writer = Callable[[AsyncSession, Sequence["Records"]], Awaitable[AfterCommit | None]]


@dataclass(frozen=True, slots=True)
class Records:
    """What processing one event writes: `rows` of `model` (a table with an `event_id`
    column), which replace whatever that table already holds for the event (a replayed
    event's earlier rows go in the same transaction).

    `writer`, when given, writes them instead, once for all the events of a batch that name
    it: a domain that adds what must commit with its rows (an outbox row, a feed position,
    a thread) does it there with a few statements per batch, not per event. The engine knows
    no writer's purpose.
    """

    event_id: uuid.UUID
    model: type[Any]
    rows: Sequence[Any]
    writer: Writer | None = None


async def replace_rows(session: AsyncSession, batch: Sequence[Records]) -> AfterCommit | None:
    """The default writer: each event's new rows in place of its earlier ones."""
    await EventRepository(session).replace_records(
        [(records.event_id, records.model, records.rows) for records in batch]
    )
    return None


async def commit_processed(
    ctx: ProcessingContext, items: Sequence[tuple[ClaimedEvent, Records]]
) -> set[uuid.UUID]:
    """Write the records of several events and mark them processed, in one transaction.

    Only events whose lease we still hold are written (the others were taken over by another
    worker); returns their ids. One transaction for a batch of events costs one commit and a
    few statements instead of a handful of each per event.
    """
    after: list[AfterCommit] = []
    async with ctx.session_factory() as session:
        events = EventRepository(session)
        owned = await events.mark_processed([event.id for event, _ in items], owner=ctx.owner)
        by_writer: dict[Writer, list[Records]] = {}
        for event, records in items:
            if event.id in owned:
                by_writer.setdefault(records.writer or replace_rows, []).append(records)
        for writer, batch in by_writer.items():
            then = await writer(session, batch)
            if then is not None:
                after.append(then)
        await session.commit()
    for then in after:
        then()
    return owned
