"""Counts of events, emails and attachments, and the backlog's age: `/stats` and `kave stats`."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.emails.repository import AttachmentRepository, EmailRepository
from app.events.schemas import EventStats, Stats
from app.processing.inbox import EventRepository
from app.processing.models import EventKind, EventStatus


async def service_stats(session: AsyncSession) -> Stats:
    events = EventRepository(session)
    by_status = {status.value: 0 for status in EventStatus}
    by_kind = {kind.value: 0 for kind in EventKind}
    matrix: dict[str, dict[str, int]] = {}
    for status, kind, count in await events.count_by_status_and_kind():
        by_status[status] = by_status.get(status, 0) + count
        by_kind[kind] = by_kind.get(kind, 0) + count
        matrix.setdefault(kind, {})[status] = count
    unprocessed, oldest = await events.count_unprocessed()
    attachments, attachment_bytes = await AttachmentRepository(session).totals()
    return Stats(
        events=EventStats(
            by_status=by_status,
            by_kind=by_kind,
            by_kind_and_status=matrix,
            unprocessed=unprocessed,
            oldest_unprocessed_age_seconds=(
                max(0.0, (utcnow() - oldest).total_seconds()) if oldest else None
            ),
        ),
        emails=await EmailRepository(session).count_all(),
        attachments=attachments,
        attachment_bytes=attachment_bytes,
    )
