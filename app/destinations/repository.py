"""Queries on destinations, notifications and attempts. They never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from app.db.base import utcnow
from app.db.repository import Repository, newest_first
from app.destinations.models import (
    Destination,
    Notification,
    NotificationAttempt,
    NotificationStatus,
)

N = Notification
S = NotificationStatus


def _due(now: datetime) -> Any:
    return or_(
        and_(N.status == S.PENDING, N.next_attempt_at <= now),
        and_(N.status == S.SENDING, N.lease_expires_at < now),
    )


@dataclass(frozen=True, slots=True)
class ClaimedNotification:
    id: uuid.UUID
    email_id: uuid.UUID | None
    type: str
    tag: str | None
    attempts: int  # including the one about to be made

    @property
    def webhook_id(self) -> str:
        return f"msg_{self.id.hex}"


class DestinationRepository(Repository[Destination]):
    model = Destination

    async def list_all(self) -> Sequence[Destination]:
        return await self.list(select(Destination).order_by(Destination.created_at, Destination.id))

    async def list_enabled(self) -> Sequence[Destination]:
        stmt = select(Destination).where(Destination.enabled.is_(True))
        return await self.list(stmt.order_by(Destination.created_at, Destination.id))


class NotificationRepository(Repository[Notification]):
    model = Notification

    async def due_destinations(self, *, exclude: set[uuid.UUID]) -> list[uuid.UUID]:
        """Enabled destinations with a notification due now, oldest due first."""
        now = utcnow()
        stmt = (
            select(N.destination_id)
            .join(Destination, Destination.id == N.destination_id)
            .where(Destination.enabled.is_(True), _due(now))
            .group_by(N.destination_id)
            .order_by(func.min(N.next_attempt_at))
        )
        found = (await self.session.scalars(stmt)).all()
        return [d for d in found if d not in exclude]

    async def claim(
        self, destination_id: uuid.UUID, *, owner: str, limit: int, lease_seconds: float
    ) -> list[ClaimedNotification]:
        """Take up to `limit` due notifications of one destination under a lease. SKIP LOCKED
        keeps several dispatchers (processes) off each other's rows on PostgreSQL."""
        now = utcnow()
        due = (
            select(N.id)
            .where(N.destination_id == destination_id, _due(now))
            .order_by(N.next_attempt_at, N.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        stmt = (
            update(N)
            .where(N.id.in_(due.scalar_subquery()), _due(now))
            .values(
                status=S.SENDING.value,
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                attempts=N.attempts + 1,
                updated_at=now,
            )
            .returning(N.id, N.email_id, N.type, N.tag, N.attempts)
            .execution_options(synchronize_session=False)
        )
        rows = (await self.session.execute(stmt)).all()
        return sorted((ClaimedNotification(*row) for row in rows), key=lambda c: c.attempts)

    async def still_held(self, ids: Sequence[uuid.UUID], *, owner: str) -> set[uuid.UUID]:
        """Those of `ids` whose lease `owner` still holds, locked for the transaction
        (PostgreSQL) so no takeover can slip in before the outcome is written."""
        stmt = (
            select(N.id)
            .where(N.id.in_(ids), N.status == S.SENDING, N.lease_owner == owner)
            .with_for_update()
        )
        return set((await self.session.scalars(stmt)).all())

    async def finish_many(self, changes: Sequence[dict[str, Any]], *, now: datetime) -> None:
        """Outcomes by primary key (each dict has `id` and the same columns), in one go."""
        if not changes:
            return
        rows = [
            {**c, "lease_owner": None, "lease_expires_at": None, "updated_at": now} for c in changes
        ]
        await self.session.execute(update(N), rows)

    async def release_owned(self, *, owner: str) -> int:
        now = utcnow()
        stmt = (
            update(N)
            .where(N.status == S.SENDING, N.lease_owner == owner)
            .values(
                status=S.PENDING.value,
                lease_owner=None,
                lease_expires_at=None,
                attempts=N.attempts - 1,
                next_attempt_at=now,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return int((await self.session.execute(stmt)).rowcount or 0)  # type: ignore[attr-defined]

    async def requeue(self, notification_id: uuid.UUID) -> bool:
        now = utcnow()
        stmt = (
            update(N)
            .where(N.id == notification_id, N.status.in_([S.FAILED.value, S.DELIVERED.value]))
            .values(status=S.PENDING.value, attempts=0, next_attempt_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]

    async def recover(
        self, destination_id: uuid.UUID, *, since: datetime, until: datetime | None
    ) -> int:
        """Send again every finished notification of the window (same ids, fresh attempts)."""
        now = utcnow()
        stmt = update(N).where(
            N.destination_id == destination_id,
            N.created_at >= since,
            N.status.in_([S.FAILED.value, S.DELIVERED.value]),
        )
        if until is not None:
            stmt = stmt.where(N.created_at < until)
        stmt = stmt.values(
            status=S.PENDING.value, attempts=0, next_attempt_at=now, updated_at=now
        ).execution_options(synchronize_session=False)
        return int((await self.session.execute(stmt)).rowcount or 0)  # type: ignore[attr-defined]

    async def page(
        self,
        destination_id: uuid.UUID,
        *,
        status: str | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[Notification]:
        stmt = select(N).where(N.destination_id == destination_id)
        if status is not None:
            stmt = stmt.where(N.status == status)
        return await self.list(newest_first(stmt, N.created_at, N.id, after=after, limit=limit))

    async def pending_by_destination(self) -> list[tuple[uuid.UUID, int, datetime | None]]:
        """(destination, notifications pending or sending, oldest created_at among them)."""
        stmt = (
            select(N.destination_id, func.count(), func.min(N.created_at))
            .where(N.status.in_([S.PENDING.value, S.SENDING.value]))
            .group_by(N.destination_id)
        )
        return [(d, int(c), oldest) for d, c, oldest in (await self.session.execute(stmt)).all()]


class AttemptRepository(Repository[NotificationAttempt]):
    model = NotificationAttempt

    async def for_notification(self, notification_id: uuid.UUID) -> Sequence[NotificationAttempt]:
        stmt = select(NotificationAttempt).where(
            NotificationAttempt.notification_id == notification_id
        )
        return await self.list(stmt.order_by(NotificationAttempt.at, NotificationAttempt.id))

    async def recent_for_notifications(
        self, notification_ids: Sequence[uuid.UUID], *, per_notification: int
    ) -> dict[uuid.UUID, list[NotificationAttempt]]:
        """The last `per_notification` attempts of each notification, newest first (one query
        for a page of notifications; the console shows them beside each row)."""
        if not notification_ids:
            return {}
        A = NotificationAttempt
        rank = (
            func.row_number()
            .over(partition_by=A.notification_id, order_by=(A.at.desc(), A.id.desc()))
            .label("rank")
        )
        ranked = select(A.id, rank).where(A.notification_id.in_(notification_ids)).subquery()
        stmt = (
            select(A)
            .join(ranked, ranked.c.id == A.id)
            .where(ranked.c.rank <= per_notification)
            .order_by(A.at.desc(), A.id.desc())
        )
        found: dict[uuid.UUID, list[NotificationAttempt]] = {}
        for attempt in await self.list(stmt):
            found.setdefault(attempt.notification_id, []).append(attempt)
        return found

    async def last_by_destination(self) -> dict[uuid.UUID, datetime]:
        """When each destination was last tried (served by the destination_id index)."""
        A = NotificationAttempt
        stmt = select(A.destination_id, func.max(A.at)).group_by(A.destination_id)
        return {row[0]: row[1] for row in (await self.session.execute(stmt)).all()}
