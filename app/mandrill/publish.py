"""What an inbound email's commit carries besides its rows: its feed position and its
notifications (the outbox), decided against what a replayed event's email was before."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.destinations.outbox import NOTIFICATIONS_DUE, enqueue_email_notifications
from app.emails.feed import NEW_MAIL, FeedRepository, PriorEmail, email_digest
from app.emails.models import Email
from app.processing.context import ProcessingContext
from app.processing.outcomes import Records


async def prior_email(ctx: ProcessingContext, event_id: uuid.UUID) -> PriorEmail | None:
    """The email a replayed event produced before (read outside the transaction: the event
    is ours under its lease, so nothing else rewrites its email meanwhile)."""
    async with ctx.session_factory() as session:
        return await FeedRepository(session).prior_for_event(event_id)


def _rang() -> None:
    NEW_MAIL.ring()
    NOTIFICATIONS_DUE.ring()


def published(email: Email, prior: PriorEmail | None) -> Records:
    """The email's records. It keeps a replayed event's id; it goes on the feed, and to the
    destinations, when it is new or differs from what the event produced before."""
    email.id = prior.id if prior is not None else uuid.uuid4()
    email.content_digest = email_digest(email, email.attachments)
    changed = (
        prior is None or prior.feed_position is None or prior.content_digest != email.content_digest
    )

    async def in_transaction(session: AsyncSession) -> None:
        if not changed:
            assert prior is not None
            email.feed_position = prior.feed_position
            return
        await enqueue_email_notifications(
            session, email_id=email.id, recipient=email.envelope_recipient
        )
        # Last: the counter's row lock is then held only for the commit itself.
        email.feed_position = await FeedRepository(session).take_position()

    return Records(Email, [email], in_transaction=in_transaction, after_commit=_rang)
