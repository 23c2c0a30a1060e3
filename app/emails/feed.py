"""The feed: emails in the order they became available, for consumers that pull.

Positions come from one counter row incremented in the transaction that stores the email.
That row's lock is held until the transaction ends, so a transaction can only take a
position after every transaction holding a smaller one has committed (or rolled back, which
gives the number back). A reader that sees position N therefore sees every position below N
that will ever exist: reading `position > cursor` never skips an email, however commits
interleave, on PostgreSQL as on SQLite.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import case, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.core.bell import Bell
from app.db.repository import Repository
from app.emails.models import Attachment, Email, FeedCounter

FEED_COUNTER = "emails"
# Rung in-process after a commit that put emails on the feed; long polls wake on it.
NEW_MAIL = Bell()

# What does not make an email different when its event is processed again.
_NOT_CONTENT = frozenset(
    {"id", "event_id", "created_at", "received_at", "feed_position", "content_digest"}
)


def email_digest(email: Email, attachments: Sequence[Attachment]) -> str:
    """SHA-256 of what the API shows of an email: every column but the bookkeeping ones (so a
    column added later counts without a change here) and each attachment's identity."""
    values: dict[str, Any] = {
        column.key: getattr(email, column.key)
        for column in Email.__table__.columns
        if column.key not in _NOT_CONTENT
    }
    values["attachments"] = [
        [a.filename, a.content_type, a.sha256, a.size, a.content_id, a.inline] for a in attachments
    ]
    encoded = orjson.dumps(values, default=str, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(encoded).hexdigest()


@dataclass(frozen=True, slots=True)
class PriorEmail:
    """What a replayed event's email was before: kept id, position and digest."""

    id: uuid.UUID
    feed_position: int | None
    content_digest: str | None


def _insert_counter(session: Any, at_least: int) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    stored = select(func.coalesce(func.max(Email.feed_position), 0)).scalar_subquery()
    highest = case((stored > at_least, stored), else_=at_least)
    return (
        insert(FeedCounter)
        .values(name=FEED_COUNTER, value=highest)
        .on_conflict_do_nothing(index_elements=["name"])
    )


class FeedRepository(Repository[Email]):
    model = Email

    async def priors_for_events(
        self, event_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, PriorEmail]:
        """What each of these events' emails is now (replayed events have one), by event id."""
        if not event_ids:
            return {}
        rows = await self.session.execute(
            select(Email.event_id, Email.id, Email.feed_position, Email.content_digest).where(
                Email.event_id.in_(event_ids)
            )
        )
        return {
            row.event_id: PriorEmail(row.id, row.feed_position, row.content_digest) for row in rows
        }

    async def take_position(self) -> int:
        """The next feed position; call it last in the transaction (it locks the counter)."""
        return (await self.take_positions(1))[0]

    async def take_positions(self, count: int, *, at_least: int = 0) -> list[int]:
        """The next `count` feed positions, in order, with one statement (see `take_position`).
        `at_least`: a position already handed out that the feed may no longer show (a
        replayed email deleted in this transaction, to be written again)."""
        if count <= 0:
            return []
        stmt = (
            update(FeedCounter)
            .where(FeedCounter.name == FEED_COUNTER)
            .values(value=FeedCounter.value + count)
            .returning(FeedCounter.value)
        )
        highest = await self.session.scalar(stmt)
        if highest is None:
            # The row is gone (a table emptied by hand): put it back at the feed's end, racing
            # other writers harmlessly, then take the positions as usual.
            await self.session.execute(_insert_counter(self.session, at_least))
            highest = await self.session.scalar(stmt)
        highest = int(highest or 0)
        return list(range(highest - count + 1, highest + 1))

    async def after(self, position: int, *, limit: int) -> Sequence[Email]:
        stmt = (
            select(Email)
            .where(Email.feed_position > position)
            .order_by(Email.feed_position)
            .limit(limit)
        )
        return await self.list(stmt)

    async def attachments_of(self, email_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
        found: dict[uuid.UUID, list[Any]] = {email_id: [] for email_id in email_ids}
        if not email_ids:
            return found
        stmt = (
            select(Attachment)
            .where(Attachment.email_id.in_(email_ids))
            .order_by(Attachment.email_id, Attachment.position)
        )
        for attachment in (await self.session.scalars(stmt)).all():
            found[attachment.email_id].append(attachment)
        return found
