"""How a task says what happened, besides succeeding or raising a retryable error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories.events import ClaimedEvent, EventRepository
from app.processing.context import ProcessingContext


class EventIgnored(Exception):
    """An authentic event Kave deliberately does nothing with."""


class PermanentFailure(Exception):
    """Retrying cannot help (the event itself is wrong): straight to `failed`."""


class LeaseLost(Exception):
    """Another worker took the event over (our lease expired); our writes were rolled back."""


Writer = Callable[[AsyncSession], Awaitable[None]]


async def commit_processed(ctx: ProcessingContext, event: ClaimedEvent, write: Writer) -> None:
    """Write the event's records and mark it processed in one transaction, under the lease."""
    async with ctx.session_factory() as session:
        await write(session)
        if not await EventRepository(session).mark_processed(event.id, owner=ctx.owner):
            await session.rollback()
            raise LeaseLost(f"lease on event {event.id} was lost before commit")
        await session.commit()
