"""Queries on delivery records (Mandrill message and sync events)."""

from __future__ import annotations

import uuid

from sqlalchemy import delete

from app.db.models import Delivery
from app.db.repository import Repository


class DeliveryRepository(Repository[Delivery]):
    model = Delivery

    async def delete_for_event(self, event_id: uuid.UUID) -> None:
        await self.session.execute(delete(Delivery).where(Delivery.event_id == event_id))
