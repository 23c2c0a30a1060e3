"""What an inbound email's commit carries besides its rows: its thread, its feed position and
its notifications (the outbox), decided against what a replayed event's email was before.

All of it is written for a whole batch of emails in the transaction that marks their events
processed, with a few statements per batch: the earlier emails of the events (one read), the
threads (one lock, one read), the destinations (one read), the feed positions (one update).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repository import insert_all
from app.destinations.outbox import NOTIFICATIONS_DUE, enqueue_email_notifications
from app.emails.feed import NEW_MAIL, FeedRepository, email_digest
from app.emails.models import Email
from app.emails.threads import ThreadRepository, named_keys
from app.processing.outcomes import AfterCommit, Records


def published(email: Email) -> Records:
    """The email's records, written by `write_emails` with the rest of its batch (the email
    names its event and its own thread key)."""
    assert email.event_id is not None
    assert email.thread_key is not None
    return Records(email.event_id, Email, [email], writer=write_emails)


def _ring_new_mail() -> None:
    NEW_MAIL.ring()


def _ring_both() -> None:
    NEW_MAIL.ring()
    NOTIFICATIONS_DUE.ring()


async def write_emails(session: AsyncSession, batch: Sequence[Records]) -> AfterCommit | None:
    """Store the batch's emails. A replayed event's email keeps its id; an email goes on the
    feed, and to the destinations, when it is new or differs from what its event produced
    before. The caller commits."""
    owned: list[tuple[uuid.UUID, Email]] = [(r.event_id, row) for r in batch for row in r.rows]
    emails = [email for _, email in owned]
    feed = FeedRepository(session)
    priors = await feed.priors_for_events([records.event_id for records in batch])
    await ThreadRepository(session).assign_many(
        [
            (str(email.thread_key), named_keys(email.in_reply_to, email.references or []))
            for email in emails
        ]
    )
    if priors:
        await session.execute(delete(Email).where(Email.event_id.in_(list(priors))))
    fresh: list[Email] = []
    for event_id, email in owned:
        prior = priors.get(event_id)
        email.id = prior.id if prior is not None else uuid.uuid4()
        for attachment in email.attachments:
            attachment.email_id = email.id
        email.content_digest = email_digest(email, email.attachments)
        if (
            prior is None
            or prior.feed_position is None
            or prior.content_digest != email.content_digest
        ):
            fresh.append(email)
        else:
            email.feed_position = prior.feed_position
    notified = await enqueue_email_notifications(
        session, [(email.id, email.envelope_recipient) for email in fresh]
    )
    # Last: the counter's row lock is then held only for the inserts and the commit.
    kept = max((p.feed_position or 0 for p in priors.values()), default=0)
    positions = await feed.take_positions(len(fresh), at_least=kept)
    for email, position in zip(fresh, positions, strict=True):
        email.feed_position = position
    await insert_all(session, emails)
    await insert_all(session, [attachment for email in emails for attachment in email.attachments])
    if not fresh:
        return None
    return _ring_both if notified else _ring_new_mail
