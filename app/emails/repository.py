"""Queries on emails and their attachments."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, delete, exists, func, literal, not_, or_, select, tuple_
from sqlalchemy.orm import load_only

from app.db.base import UTCDateTime
from app.db.repository import Repository, newest_first, oldest_first
from app.emails.models import Attachment, Email, ThreadKey


@dataclass(frozen=True, slots=True)
class EmailFilters:
    """Substring filters are case-insensitive; the time range is `[after, before)`."""

    from_contains: str | None = None
    to_contains: str | None = None
    subject_contains: str | None = None
    received_after: datetime | None = None
    received_before: datetime | None = None
    has_attachments: bool | None = None
    category: str | None = None
    thread_id: uuid.UUID | None = None  # a thread that survived any merge (see threads.py)


def _contains(column: Any, value: str) -> Any:
    # lower() on both sides works the same on SQLite and PostgreSQL (ILIKE is PostgreSQL only);
    # autoescape makes % and _ in the value match literally.
    return func.lower(column).contains(value.lower(), autoescape=True)


def _email_filters(stmt: Select[Any], filters: EmailFilters) -> Select[Any]:
    if filters.from_contains:
        stmt = stmt.where(_contains(Email.from_address, filters.from_contains))
    if filters.to_contains:
        # recipients_text is already lower-cased To + Cc addresses.
        stmt = stmt.where(
            or_(
                Email.recipients_text.contains(filters.to_contains.lower(), autoescape=True),
                _contains(Email.envelope_recipient, filters.to_contains),
            )
        )
    if filters.subject_contains:
        stmt = stmt.where(_contains(Email.subject, filters.subject_contains))
    if filters.received_after is not None:
        stmt = stmt.where(Email.received_at >= filters.received_after)
    if filters.received_before is not None:
        stmt = stmt.where(Email.received_at < filters.received_before)
    if filters.has_attachments is not None:
        has_any = exists().where(Attachment.email_id == Email.id)
        stmt = stmt.where(has_any if filters.has_attachments else not_(has_any))
    if filters.category is not None:
        stmt = stmt.where(Email.category == filters.category)
    if filters.thread_id is not None:
        stmt = stmt.where(ThreadKey.thread_id == filters.thread_id)
    return stmt


# A conversation is read in the order it was written: the Date header, else arrival.
WRITTEN_AT = func.coalesce(Email.sent_at, Email.received_at, type_=UTCDateTime)
_LISTED = (
    Email.id,
    Email.event_id,
    Email.message_id,
    Email.subject,
    Email.from_address,
    Email.from_name,
    Email.to,
    Email.envelope_recipient,
    Email.sent_at,
    Email.received_at,
    Email.thread_key,
    Email.category,
    Email.sender_authenticated,
)


def _listed() -> Select[Any]:
    """Emails with their attachment count and current thread; bodies stay in the database."""
    attachment_count = (
        select(func.count(Attachment.id))
        .where(Attachment.email_id == Email.id)
        .correlate(Email)
        .scalar_subquery()
    )
    return (
        select(Email, attachment_count, ThreadKey.thread_id)
        .outerjoin(ThreadKey, ThreadKey.key == Email.thread_key)
        .options(load_only(*_LISTED, raiseload=True))
    )


class EmailRepository(Repository[Email]):
    model = Email

    async def page(
        self,
        filters: EmailFilters,
        *,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[tuple[Email, int, uuid.UUID | None]]:
        """Newest first by `(received_at, id)`, strictly after the keyset position `after`.

        Only the listed columns are loaded (bodies and headers stay in the database); the
        attachment count is a correlated subquery, not a stored column.
        """
        stmt = _email_filters(_listed(), filters)
        stmt = newest_first(stmt, Email.received_at, Email.id, after=after, limit=limit)
        rows = (await self.session.execute(stmt)).all()
        return [(email, int(count), thread) for email, count, thread in rows]

    async def thread_page(
        self,
        filters: EmailFilters,
        *,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[tuple[Email, int, uuid.UUID | None]]:
        """Oldest first by `(sent_at or received_at, id)`: a conversation as it was written."""
        stmt = _email_filters(_listed(), filters)
        if after is not None:
            when, last_id = after
            stmt = stmt.where(
                tuple_(WRITTEN_AT, Email.id)
                > tuple_(literal(when, UTCDateTime()), literal(last_id, Email.id.type))
            )
        stmt = stmt.order_by(WRITTEN_AT, Email.id).limit(limit)
        rows = (await self.session.execute(stmt)).all()
        return [(email, int(count), thread) for email, count, thread in rows]

    async def count_in_thread(self, thread_id: uuid.UUID) -> int:
        stmt = (
            select(func.count(Email.id))
            .join(ThreadKey, ThreadKey.key == Email.thread_key)
            .where(ThreadKey.thread_id == thread_id)
        )
        return int(await self.session.scalar(stmt) or 0)

    async def thread_of(self, email: Email, *, limit: int = 50) -> Sequence[Email]:
        """The other emails of `email`'s thread, oldest first (by Date, else arrival)."""
        if email.thread_key is None:
            return []
        thread = (
            select(ThreadKey.thread_id).where(ThreadKey.key == email.thread_key).scalar_subquery()
        )
        stmt = (
            select(Email)
            .join(ThreadKey, ThreadKey.key == Email.thread_key)
            .options(
                load_only(
                    Email.id, Email.subject, Email.from_address, Email.received_at, raiseload=True
                )
            )
            .where(ThreadKey.thread_id == thread, Email.id != email.id)
            .order_by(WRITTEN_AT, Email.id)
            .limit(limit)
        )
        return await self.list(stmt)

    async def received_per_hour(self, *, since: datetime, hours: int) -> list[int]:
        """How many emails were received in each of `hours` hours from `since`: one statement
        (a sum per hour over the index range), the same on SQLite and PostgreSQL."""
        buckets = [
            func.coalesce(
                func.sum(
                    case(
                        (
                            and_(
                                Email.received_at >= since + timedelta(hours=hour),
                                Email.received_at < since + timedelta(hours=hour + 1),
                            ),
                            1,
                        ),
                        else_=0,
                    )
                ),
                0,
            )
            for hour in range(hours)
        ]
        stmt = select(*buckets).where(
            Email.received_at >= since, Email.received_at < since + timedelta(hours=hours)
        )
        row = (await self.session.execute(stmt)).one()
        return [int(count) for count in row]

    async def recent_recipients(self, *, limit: int = 20) -> list[str]:
        """Receiving addresses of the latest emails, most recent first, each once."""
        stmt = (
            select(Email.envelope_recipient)
            .where(Email.envelope_recipient.is_not(None))
            .order_by(Email.received_at.desc())
            .limit(limit * 10)
        )
        seen: dict[str, None] = {}
        for address in (await self.session.scalars(stmt)).all():
            if address:
                seen.setdefault(address, None)
        return list(seen)[:limit]

    async def id_for_event(self, event_id: uuid.UUID) -> uuid.UUID | None:
        """The email the webhook event `event_id` became, if it did."""
        return await self.session.scalar(select(Email.id).where(Email.event_id == event_id))

    async def count_all(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(Email)) or 0)

    async def ids_received_before(
        self, cutoff: datetime, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[tuple[datetime, uuid.UUID]]:
        """`(received_at, id)` of emails received before `cutoff`, oldest first, past `after`."""
        stmt: Any = select(Email.received_at, Email.id).where(Email.received_at < cutoff)
        stmt = oldest_first(stmt, Email.received_at, Email.id, after=after, limit=limit)
        return [(at, id_) for at, id_ in (await self.session.execute(stmt)).all()]

    async def removal_keys(
        self, email_ids: Sequence[uuid.UUID]
    ) -> tuple[set[str], list[uuid.UUID]]:
        """The raw-message blob keys of these emails, and the events they came from."""
        stmt = select(Email.raw_blob_key, Email.event_id).where(Email.id.in_(email_ids))
        keys: set[str] = set()
        events: list[uuid.UUID] = []
        for key, event_id in (await self.session.execute(stmt)).all():
            if key:
                keys.add(key)
            if event_id is not None:
                events.append(event_id)
        return keys, events

    async def delete_many(self, email_ids: Sequence[uuid.UUID]) -> int:
        result = await self.session.execute(delete(Email).where(Email.id.in_(email_ids)))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def count_with_raw(self, *, since: datetime, until: datetime | None) -> int:
        stmt = select(func.count()).select_from(Email)
        stmt = _raw_between(stmt, since, until)
        return int(await self.session.scalar(stmt) or 0)

    async def count_all_between(self, *, since: datetime, until: datetime | None) -> int:
        stmt = select(func.count()).select_from(Email).where(Email.received_at >= since)
        if until is not None:
            stmt = stmt.where(Email.received_at < until)
        return int(await self.session.scalar(stmt) or 0)

    async def raw_messages(
        self,
        *,
        since: datetime,
        until: datetime | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[RawMessageRef]:
        """Emails whose raw message is kept, received in `[since, until)`, oldest first."""
        stmt: Any = select(
            Email.id, Email.received_at, Email.raw_blob_key, Email.from_address, Email.raw_size
        )
        stmt = _raw_between(stmt, since, until)
        stmt = oldest_first(stmt, Email.received_at, Email.id, after=after, limit=limit)
        return [RawMessageRef(*row) for row in (await self.session.execute(stmt)).all()]


@dataclass(frozen=True, slots=True)
class RawMessageRef:
    id: uuid.UUID
    received_at: datetime
    blob_key: str
    from_address: str | None
    size: int


def _raw_between(stmt: Any, since: datetime, until: datetime | None) -> Any:
    stmt = stmt.where(Email.raw_blob_key.is_not(None), Email.received_at >= since)
    return stmt.where(Email.received_at < until) if until is not None else stmt


class AttachmentRepository(Repository[Attachment]):
    model = Attachment

    async def blob_in_use(self, blob_key: str) -> bool:
        attachment = select(Attachment.id).where(Attachment.blob_key == blob_key).limit(1)
        raw = select(Email.id).where(Email.raw_blob_key == blob_key).limit(1)
        return (await self.session.scalar(attachment)) is not None or (
            await self.session.scalar(raw)
        ) is not None

    async def list_for_email(self, email_id: uuid.UUID) -> Sequence[Attachment]:
        return await self.list(
            select(Attachment).where(Attachment.email_id == email_id).order_by(Attachment.position)
        )

    async def blob_used_since(self, blob_key: str, cutoff: datetime) -> bool:
        """Whether an email received at or after `cutoff` references the blob (what retention
        keeps), as an attachment or as its raw message."""
        attachment = (
            select(Attachment.id)
            .join(Email, Email.id == Attachment.email_id)
            .where(Attachment.blob_key == blob_key, Email.received_at >= cutoff)
            .limit(1)
        )
        raw = (
            select(Email.id)
            .where(Email.raw_blob_key == blob_key, Email.received_at >= cutoff)
            .limit(1)
        )
        return (await self.session.scalar(attachment)) is not None or (
            await self.session.scalar(raw)
        ) is not None

    async def blob_keys_for(self, email_ids: Sequence[uuid.UUID]) -> set[str]:
        stmt = select(Attachment.blob_key).where(Attachment.email_id.in_(email_ids))
        return set((await self.session.scalars(stmt)).all())

    async def delete_for_emails(self, email_ids: Sequence[uuid.UUID]) -> int:
        result = await self.session.execute(
            delete(Attachment).where(Attachment.email_id.in_(email_ids))
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def delete_for_email(self, email_id: uuid.UUID) -> int:
        result = await self.session.execute(
            delete(Attachment).where(Attachment.email_id == email_id)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def totals(self) -> tuple[int, int]:
        """`(number of attachments, their total size in bytes)`."""
        stmt = select(func.count(Attachment.id), func.coalesce(func.sum(Attachment.size), 0))
        count, size = (await self.session.execute(stmt)).one()
        return int(count), int(size)
