"""How a task says what happened, and how what it produced is committed."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete

from app.audience.models import AudienceEvent
from app.db.base import Base
from app.deliveries.models import Delivery
from app.emails.models import Email
from app.processing.context import ProcessingContext
from app.processing.inbox import ClaimedEvent, EventRepository


class EventIgnored(Exception):
    """An authentic event Kave deliberately does nothing with."""


class PermanentFailure(Exception):
    """Retrying cannot help (the event itself is wrong): straight to `failed`."""


class LeaseLost(Exception):
    """Another worker took the event over (our lease expired); our writes were rolled back."""


@dataclass(frozen=True, slots=True)
class Records:
    """What processing one event writes. `rows` replace whatever `model` already holds for
    the event: a replayed event's earlier rows go in the same transaction."""

    model: type[Email] | type[Delivery] | type[AudienceEvent]
    rows: Sequence[Base]


async def commit_processed(
    ctx: ProcessingContext, items: Sequence[tuple[ClaimedEvent, Records]]
) -> set[uuid.UUID]:
    """Write the records of several events and mark them processed, in one transaction.

    Only events whose lease we still hold are written (the others were taken over by another
    worker); returns their ids. One transaction for a batch of events costs one commit and a
    few statements instead of a handful of each per event.
    """
    async with ctx.session_factory() as session:
        owned = await EventRepository(session).mark_processed(
            [event.id for event, _ in items], owner=ctx.owner
        )
        kept = [(event, records) for event, records in items if event.id in owned]
        replaced: dict[type[Email] | type[Delivery] | type[AudienceEvent], list[uuid.UUID]]
        replaced = defaultdict(list)
        for event, records in kept:
            replaced[records.model].append(event.id)
        for model, event_ids in replaced.items():
            await session.execute(delete(model).where(model.event_id.in_(event_ids)))
        for _, records in kept:
            session.add_all(records.rows)
        await session.commit()
    return owned
