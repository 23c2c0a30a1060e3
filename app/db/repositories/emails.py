"""Queries on emails and their attachments."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select

from app.db.models import Attachment, Email
from app.db.repository import Repository


class EmailRepository(Repository[Email]):
    model = Email

    async def delete_for_event(self, event_id: uuid.UUID) -> None:
        """Replay replaces what an earlier run of the same event wrote (attachments cascade)."""
        await self.session.execute(delete(Email).where(Email.event_id == event_id))


class AttachmentRepository(Repository[Attachment]):
    model = Attachment

    async def blob_in_use(self, blob_key: str) -> bool:
        attachment = select(Attachment.id).where(Attachment.blob_key == blob_key).limit(1)
        raw = select(Email.id).where(Email.raw_blob_key == blob_key).limit(1)
        return (await self.session.scalar(attachment)) is not None or (
            await self.session.scalar(raw)
        ) is not None
