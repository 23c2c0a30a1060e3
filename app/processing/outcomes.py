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


@dataclass(frozen=True, slots=True)
class Records:
    """What processing one event writes. `rows` replace whatever `model` (a table with an
    `event_id` column) already holds for the event: a replayed event's earlier rows go in the
    same transaction.

    `in_transaction` runs inside the transaction that writes the rows, after them (a domain
    adds what must commit with them: an outbox row, a feed position); `after_commit` runs
    once that transaction has committed (a wake-up call). The engine knows neither's purpose.
    """

    model: type[Any]
    rows: Sequence[Any]
    in_transaction: Callable[[AsyncSession], Awaitable[None]] | None = None
    after_commit: Callable[[], None] | None = None


async def commit_processed(
    ctx: ProcessingContext, items: Sequence[tuple[ClaimedEvent, Records]]
) -> set[uuid.UUID]:
    """Write the records of several events and mark them processed, in one transaction.

    Only events whose lease we still hold are written (the others were taken over by another
    worker); returns their ids. One transaction for a batch of events costs one commit and a
    few statements instead of a handful of each per event.
    """
    async with ctx.session_factory() as session:
        events = EventRepository(session)
        owned = await events.mark_processed([event.id for event, _ in items], owner=ctx.owner)
        kept = [
            (event.id, records.model, records.rows) for event, records in items if event.id in owned
        ]
        await events.replace_records(kept)
        for event, records in items:
            if event.id in owned and records.in_transaction is not None:
                await records.in_transaction(session)
        await session.commit()
    for event, records in items:
        if event.id in owned and records.after_commit is not None:
            records.after_commit()
    return owned
