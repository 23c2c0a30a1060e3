"""Queries on audience events (Mailchimp Marketing webhooks)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from app.audience.models import AudienceEvent
from app.db.repository import Repository, newest_first

A = AudienceEvent


@dataclass(frozen=True, slots=True)
class AudienceFilter:
    type: str | None = None
    email: str | None = None
    list_id: str | None = None
    fired_after: datetime | None = None


class AudienceEventRepository(Repository[AudienceEvent]):
    model = AudienceEvent

    async def page(
        self,
        where: AudienceFilter,
        *,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[AudienceEvent]:
        """Newest first by (created_at, id): fired_at can be null, created_at never is.

        `after` is the (created_at, id) of the last row of the previous page (keyset paging).
        """
        stmt = self.select()
        if where.type is not None:
            stmt = stmt.where(A.type == where.type)
        if where.email is not None:
            stmt = stmt.where(A.email == where.email.strip().lower())
        if where.list_id is not None:
            stmt = stmt.where(A.list_id == where.list_id)
        if where.fired_after is not None:
            stmt = stmt.where(A.fired_at > where.fired_after)
        return await self.list(newest_first(stmt, A.created_at, A.id, after=after, limit=limit))
