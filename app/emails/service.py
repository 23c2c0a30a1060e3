"""Removing stored mail: rows first (committed), then the blobs nothing references any more."""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.emails.errors import EmailNotFound
from app.emails.repository import AttachmentRepository, EmailRepository
from app.processing.inbox import EventRepository
from app.storage.base import BlobStore

logger = structlog.get_logger("app.emails.service")


async def delete_email(session: AsyncSession, store: BlobStore, email_id: uuid.UUID) -> None:
    """Delete the email and its attachments, then their blobs unless another email shares them.

    Blobs are content-addressed, so two emails with the same attachment share one blob. The
    rows go first: if deleting a blob then fails, the worst case is an orphaned blob, never a
    row that points at nothing.
    """
    emails = EmailRepository(session)
    attachments = AttachmentRepository(session)
    email = await emails.get(email_id)
    if email is None:
        raise EmailNotFound()
    keys = {a.blob_key for a in await attachments.list_for_email(email_id)}
    if email.raw_blob_key:
        keys.add(email.raw_blob_key)
    await attachments.delete_for_email(email_id)
    await emails.delete_by_id(email_id)
    if email.event_id is not None:
        # The webhook payload holds the same message; deleting the email deletes it too.
        await EventRepository(session).purge_payload(email.event_id)
    await session.commit()

    removed = 0
    for key in sorted(keys):
        if await attachments.blob_in_use(key):
            continue
        try:
            await store.delete(key)
            removed += 1
        except Exception as exc:  # noqa: BLE001 (the email is gone; a stray blob is harmless)
            logger.warning("email.blob_delete_failed", blob_key=key, exc_type=type(exc).__name__)
    logger.info("email.deleted", email_id=str(email_id), blobs_deleted=removed)
