"""Queries on emails and their attachments."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, exists, func, not_, or_, select
from sqlalchemy.orm import load_only

from app.db.repository import Repository, newest_first, oldest_first
from app.emails.models import Attachment, Email


@dataclass(frozen=True, slots=True)
class EmailFilters:
    """Substring filters are case-insensitive; the time range is `[after, before)`."""

    from_contains: str | None = None
    to_contains: str | None = None
    subject_contains: str | None = None
    received_after: datetime | None = None
    received_before: datetime | None = None
    has_attachments: bool | None = None


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
    return stmt


class EmailRepository(Repository[Email]):
    model = Email

    async def page(
        self,
        filters: EmailFilters,
        *,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[tuple[Email, int]]:
        """Newest first by `(received_at, id)`, strictly after the keyset position `after`.

        Only the listed columns are loaded (bodies and headers stay in the database); the
        attachment count is a correlated subquery, not a stored column.
        """
        attachment_count = (
            select(func.count(Attachment.id))
            .where(Attachment.email_id == Email.id)
            .correlate(Email)
            .scalar_subquery()
        )
        stmt = select(Email, attachment_count).options(
            load_only(
                Email.id,
                Email.message_id,
                Email.subject,
                Email.from_address,
                Email.from_name,
                Email.to,
                Email.envelope_recipient,
                Email.received_at,
                raiseload=True,
            )
        )
        stmt = _email_filters(stmt, filters)
        stmt = newest_first(stmt, Email.received_at, Email.id, after=after, limit=limit)
        rows = (await self.session.execute(stmt)).all()
        return [(email, int(count)) for email, count in rows]

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
