"""Removing stored mail: rows first (committed), then the blobs nothing references any more."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.emails.errors import EmailNotFound
from app.emails.repository import AttachmentRepository, EmailRepository
from app.processing.inbox import EventRepository
from app.storage.base import BlobStore

logger = structlog.get_logger("app.emails.service")


@dataclass(frozen=True, slots=True)
class Removed:
    emails: int
    blobs_deleted: int


async def delete_emails(
    session: AsyncSession, store: BlobStore, email_ids: Sequence[uuid.UUID]
) -> Removed:
    """Delete the emails and their attachments, then their blobs unless another email shares
    them. Commits.

    Blobs are content-addressed, so two emails with the same attachment share one blob. The
    rows go first: if deleting a blob then fails, the worst case is an orphaned blob, never a
    row that points at nothing. The webhook payloads hold the same messages: they go too.
    """
    if not email_ids:
        return Removed(0, 0)
    emails = EmailRepository(session)
    attachments = AttachmentRepository(session)
    keys, event_ids = await emails.removal_keys(email_ids)
    keys |= await attachments.blob_keys_for(email_ids)
    # The events first: a worker storing a replay of one of them locks its event, then its
    # email; taking them in the same order means waiting for it, never deadlocking with it.
    await EventRepository(session).purge_payloads_of(event_ids)
    await attachments.delete_for_emails(email_ids)
    deleted = await emails.delete_many(email_ids)
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
    return Removed(deleted, removed)


async def delete_email(session: AsyncSession, store: BlobStore, email_id: uuid.UUID) -> None:
    """Delete one email (404 when there is none); the log line says who, as bound by the caller."""
    if await EmailRepository(session).get(email_id) is None:
        raise EmailNotFound()
    removed = await delete_emails(session, store, [email_id])
    logger.info("email.deleted", email_id=str(email_id), blobs_deleted=removed.blobs_deleted)
