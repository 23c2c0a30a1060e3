"""The outbox: notifications written in the transaction that stores the email.

A crash before that commit loses the email and its notifications together (the event is
processed again); after it, both exist and the dispatcher sends what is pending. Nothing is
ever sent for an email that was not committed, nor lost for one that was.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.bell import Bell
from app.db.base import utcnow
from app.destinations.models import Notification, NotificationType
from app.destinations.patterns import match_recipient
from app.destinations.repository import DestinationRepository

# Rung in-process when notifications became due (a commit, a replay): the dispatcher wakes.
NOTIFICATIONS_DUE = Bell()


async def enqueue_email_notifications(
    session: AsyncSession, emails: Sequence[tuple[uuid.UUID, str | None]]
) -> int:
    """Add one pending notification per email (id, envelope recipient) and enabled
    destination whose pattern matches; the caller's transaction commits them with the
    emails. One read of the destinations for all of them. Returns how many were added."""
    if not emails:
        return 0
    destinations = await DestinationRepository(session).list_enabled()
    now = utcnow()
    added = 0
    for email_id, recipient in emails:
        for destination in destinations:
            match = match_recipient(destination.recipients, recipient)
            if match is None:
                continue
            session.add(
                Notification(
                    id=uuid.uuid4(),
                    destination_id=destination.id,
                    email_id=email_id,
                    type=NotificationType.EMAIL_RECEIVED.value,
                    tag=match.tag,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
            added += 1
    return added
