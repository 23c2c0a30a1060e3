"""Queries on webhook events: claims under a lease, outcomes, replay, listing.

The acknowledgement's insert lives in `new_events.py`."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import defer

from app.db.base import utcnow
from app.db.repository import Repository, newest_first
from app.processing.models import EventStatus, WebhookEvent

E = WebhookEvent
S = EventStatus


@dataclass(slots=True)
class ClaimedEvent:
    id: uuid.UUID
    kind: str
    event_type: str
    payload: str | None
    attempts: int
    received_at: datetime
    payload_size: int = 0

    def __post_init__(self) -> None:
        self.payload_size = len(self.payload or "")

    def take_payload(self) -> str | None:
        """Hand the payload over: a large message's text is then freed as soon as the
        handler has decoded it, rather than held beside every copy made from it."""
        payload, self.payload = self.payload, None
        return payload


def _claimable(now: datetime, owner: str) -> Any:
    return or_(
        and_(E.status == S.RECEIVED, E.next_attempt_at <= now),
        and_(E.status == S.PROCESSING, E.lease_expires_at < now),
        # Claimed in bulk by this process's recovery loop, not yet started.
        and_(
            E.status == S.PROCESSING,
            E.lease_owner == owner,
            E.processing_started_at.is_(None),
        ),
    )


def _lease_ended(now: datetime, **values: Any) -> dict[str, Any]:
    """An outcome's values: the lease is given up along with them."""
    return {"lease_owner": None, "lease_expires_at": None, "updated_at": now, **values}


def _requeued(now: datetime) -> dict[str, Any]:
    """A replayed event: back to received, due now, with a fresh attempt budget."""
    return {
        "status": S.RECEIVED.value,
        "attempts": 0,
        "next_attempt_at": now,
        "failed_at": None,
        "updated_at": now,
    }


class EventRepository(Repository[WebhookEvent]):
    model = WebhookEvent

    async def claim(
        self, event_ids: Sequence[uuid.UUID], *, owner: str, lease_seconds: float
    ) -> list[ClaimedEvent]:
        """Start the events that are still claimable (one statement); the rest are skipped."""
        if not event_ids:
            return []
        now = utcnow()
        stmt = (
            update(E)
            .where(E.id.in_(event_ids), _claimable(now, owner))
            .values(
                status=S.PROCESSING.value,
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                processing_started_at=now,
                attempts=E.attempts + 1,
                updated_at=now,
            )
            .returning(E.id, E.kind, E.event_type, E.payload, E.attempts, E.received_at)
            .execution_options(synchronize_session=False)
        )
        return [ClaimedEvent(*row) for row in (await self.session.execute(stmt)).all()]

    async def claim_due(self, *, owner: str, limit: int, lease_seconds: float) -> list[uuid.UUID]:
        """Claim a batch for this process; SKIP LOCKED keeps replicas off each other's rows."""
        now = utcnow()
        due = (
            select(E.id)
            .where(
                or_(
                    and_(E.status == S.RECEIVED, E.next_attempt_at <= now),
                    and_(E.status == S.PROCESSING, E.lease_expires_at < now),
                )
            )
            .order_by(E.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        stmt = (
            update(E)
            .where(E.id.in_(due.scalar_subquery()))
            .values(
                status=S.PROCESSING.value,
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                processing_started_at=None,
                updated_at=now,
            )
            .returning(E.id)
            .execution_options(synchronize_session=False)
        )
        return list((await self.session.scalars(stmt)).all())

    async def any_due(self) -> bool:
        """Whether `claim_due` would find anything: one indexed read, no lock taken."""
        now = utcnow()
        stmt = (
            select(E.id)
            .where(
                or_(
                    and_(E.status == S.RECEIVED, E.next_attempt_at <= now),
                    and_(E.status == S.PROCESSING, E.lease_expires_at < now),
                )
            )
            .limit(1)
        )
        return (await self.session.scalar(stmt)) is not None

    async def replace_records(
        self, items: Sequence[tuple[uuid.UUID, type[Any], Sequence[Any]]]
    ) -> None:
        """Put each event's new rows in place of what its table held for the event before."""
        by_model: dict[type[Any], list[uuid.UUID]] = defaultdict(list)
        for event_id, model, _ in items:
            by_model[model].append(event_id)
        for model, event_ids in by_model.items():
            await self.session.execute(delete(model).where(model.event_id.in_(event_ids)))
        for _, _, rows in items:
            self.session.add_all(rows)

    async def _finish(self, event_id: uuid.UUID, owner: str, **values: Any) -> bool:
        """Apply an outcome only while we still hold the lease (a fence against a late worker)."""
        now = utcnow()
        stmt = (
            update(E)
            .where(E.id == event_id, E.status == S.PROCESSING, E.lease_owner == owner)
            .values(**_lease_ended(now, **values))
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(stmt)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def mark_processed(self, event_ids: Sequence[uuid.UUID], *, owner: str) -> set[uuid.UUID]:
        """Mark processed those we still hold the lease on; returns their ids. The rows stay
        locked until the transaction ends, so the records written beside them are fenced."""
        now = utcnow()
        stmt = (
            update(E)
            .where(E.id.in_(event_ids), E.status == S.PROCESSING, E.lease_owner == owner)
            .values(
                **_lease_ended(now, status=S.PROCESSED.value, processed_at=now, last_error=None)
            )
            .returning(E.id)
            .execution_options(synchronize_session=False)
        )
        return set((await self.session.scalars(stmt)).all())

    async def mark_ignored(self, event_id: uuid.UUID, *, owner: str, reason: str) -> bool:
        return await self._finish(
            event_id, owner, status=S.IGNORED.value, processed_at=utcnow(), last_error=reason
        )

    async def mark_failed(self, event_id: uuid.UUID, *, owner: str, error: str) -> bool:
        return await self._finish(
            event_id, owner, status=S.FAILED.value, failed_at=utcnow(), last_error=error
        )

    async def schedule_retry(
        self, event_id: uuid.UUID, *, owner: str, error: str, delay_seconds: float
    ) -> bool:
        return await self._finish(
            event_id,
            owner,
            status=S.RECEIVED.value,
            next_attempt_at=utcnow() + timedelta(seconds=delay_seconds),
            last_error=error,
        )

    async def release_owned(self, *, owner: str) -> int:
        """On shutdown: hand unfinished claims back at once instead of waiting out the lease."""
        now = utcnow()
        stmt = (
            update(E)
            .where(E.status == S.PROCESSING, E.lease_owner == owner)
            .values(**_lease_ended(now, status=S.RECEIVED.value, next_attempt_at=now))
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(stmt)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def purge_payloads(self, *, older_than: datetime) -> int:
        now = utcnow()
        stmt = (
            update(E)
            .where(
                E.status == S.PROCESSED,
                E.processed_at < older_than,
                E.payload.is_not(None),
            )
            .values(payload=None, payload_purged_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(stmt)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def purge_payload(self, event_id: uuid.UUID) -> None:
        """Drop one event's raw payload (its email was deleted: the message must go too)."""
        now = utcnow()
        await self.session.execute(
            update(E)
            .where(E.id == event_id, E.payload.is_not(None))
            .values(payload=None, payload_purged_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )

    async def purge_payloads_of(self, event_ids: Sequence[uuid.UUID]) -> None:
        """`purge_payload` for several events at once."""
        if not event_ids:
            return
        now = utcnow()
        await self.session.execute(
            update(E)
            .where(E.id.in_(event_ids), E.payload.is_not(None))
            .values(payload=None, payload_purged_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )

    async def requeue(self, event_id: uuid.UUID) -> bool:
        """Replay: a failed or processed event goes back to received, due now."""
        now = utcnow()
        stmt = (
            update(E)
            .where(E.id == event_id, E.status.in_([S.FAILED.value, S.PROCESSED.value]))
            .values(**_requeued(now))
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(stmt)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def count_unprocessed(self) -> tuple[int, datetime | None]:
        stmt = select(func.count(), func.min(E.received_at)).where(
            E.status.in_([S.RECEIVED.value, S.PROCESSING.value])
        )
        count, oldest = (await self.session.execute(stmt)).one()
        return int(count), oldest

    async def get_without_payload(self, event_id: uuid.UUID) -> WebhookEvent | None:
        """The event's state; its payload (up to the body limit) stays in the database."""
        stmt = select(E).where(E.id == event_id).options(defer(E.payload, raiseload=True))
        return await self.session.scalar(stmt)

    async def get_payload(self, event_id: uuid.UUID) -> str | None:
        return await self.session.scalar(select(E.payload).where(E.id == event_id))

    async def has_payload(self, event_id: uuid.UUID) -> bool:
        stmt = select(E.id).where(E.id == event_id, E.payload.is_not(None))
        return (await self.session.scalar(stmt)) is not None

    async def page(
        self,
        *,
        status: str | None,
        kind: str | None,
        received_after: datetime | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[WebhookEvent]:
        """Newest first by `(received_at, id)`, strictly after the keyset position `after`."""
        stmt = select(E).options(defer(E.payload, raiseload=True))
        if status is not None:
            stmt = stmt.where(E.status == status)
        if kind is not None:
            stmt = stmt.where(E.kind == kind)
        if received_after is not None:
            stmt = stmt.where(E.received_at >= received_after)
        return await self.list(newest_first(stmt, E.received_at, E.id, after=after, limit=limit))

    async def statuses(self, event_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The status of each of these events (those that exist)."""
        if not event_ids:
            return {}
        stmt = select(E.id, E.status).where(E.id.in_(event_ids))
        return {row.id: row.status for row in (await self.session.execute(stmt)).all()}

    async def count_by_status_and_kind(self) -> list[tuple[str, str, int]]:
        stmt = select(E.status, E.kind, func.count()).group_by(E.status, E.kind)
        rows = (await self.session.execute(stmt)).all()
        return [(status, kind, int(count)) for status, kind, count in rows]

    async def replayable_ids(
        self,
        *,
        status: str,
        kind: str | None,
        since: datetime | None,
        skip_kinds: Sequence[str],
        limit: int | None,
    ) -> list[uuid.UUID]:
        """The oldest events in `status` that still have a payload (a purged event could
        only fail again), optionally of one kind, received at or after `since`."""
        stmt = _matching(status=status, kind=kind, since=since, skip_kinds=skip_kinds)
        stmt = stmt.where(E.payload.is_not(None)).order_by(E.received_at, E.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        return list((await self.session.scalars(stmt)).all())

    async def requeue_many(self, event_ids: Sequence[uuid.UUID], *, status: str) -> int:
        """Replay in bulk: like `requeue`, for those of `event_ids` still in `status`."""
        if status not in (S.FAILED.value, S.PROCESSED.value):
            raise ValueError("only failed or processed events can be requeued")
        stmt = (
            update(E)
            .where(E.id.in_(event_ids), E.status == status)
            .values(**_requeued(utcnow()))
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(stmt)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def count_purged(
        self, *, status: str, kind: str | None, since: datetime | None, skip_kinds: Sequence[str]
    ) -> int:
        stmt = _matching(status=status, kind=kind, since=since, skip_kinds=skip_kinds)
        count = select(func.count()).select_from(stmt.where(E.payload.is_(None)).subquery())
        return int(await self.session.scalar(count) or 0)

    async def count_matching(
        self, *, status: str, kind: str | None, since: datetime | None, kinds: Sequence[str]
    ) -> int:
        """Events in `status` of one of `kinds` (what a replay leaves out, say)."""
        if not kinds:
            return 0
        stmt = _matching(status=status, kind=kind, since=since, skip_kinds=()).where(
            E.kind.in_(kinds)
        )
        count = select(func.count()).select_from(stmt.subquery())
        return int(await self.session.scalar(count) or 0)


def _matching(
    *, status: str, kind: str | None, since: datetime | None, skip_kinds: Sequence[str]
) -> Any:
    stmt = select(E.id).where(E.status == status)
    if kind is not None:
        stmt = stmt.where(E.kind == kind)
    if since is not None:
        stmt = stmt.where(E.received_at >= since)
    if skip_kinds:
        stmt = stmt.where(E.kind.not_in(skip_kinds))
    return stmt
