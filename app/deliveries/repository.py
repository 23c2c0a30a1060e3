"""Queries on delivery records (Mandrill message and sync events)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select

from app.db.repository import Repository
from app.deliveries.models import Delivery
from app.processing.models import EventKind


class DeliveryRepository(Repository[Delivery]):
    model = Delivery

    async def list_for_message(self, message_id: str, *, limit: int) -> Sequence[Delivery]:
        """The message events of Mandrill message `message_id`, plus the sync (deny-list)
        events of its recipients, in the order they happened (undated ones last)."""
        recipients = (
            select(Delivery.recipient)
            .where(Delivery.message_id == message_id, Delivery.recipient.is_not(None))
            .distinct()
        )
        stmt = (
            select(Delivery)
            .where(
                or_(
                    Delivery.message_id == message_id,
                    (Delivery.kind == EventKind.SYNC.value)
                    & Delivery.recipient.in_(recipients.scalar_subquery()),
                )
            )
            .order_by(
                Delivery.occurred_at.is_(None),
                Delivery.occurred_at,
                Delivery.created_at,
                Delivery.id,
            )
            .limit(limit)
        )
        return await self.list(stmt)
