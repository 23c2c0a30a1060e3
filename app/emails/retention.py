"""EMAIL_RETENTION_DAYS: emails older than that are deleted with their unshared blobs.

Like Action Mailbox's incineration: the worker's purge loop runs `purge_expired_emails` (the app
hands it to the engine as a purge hook), and `kave emails purge` runs `purge_emails` by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.base import utcnow
from app.emails.repository import AttachmentRepository, EmailRepository
from app.emails.service import delete_emails
from app.processing.context import ProcessingContext
from app.storage.base import BlobStore

logger = structlog.get_logger("app.emails.retention")

# Emails per transaction: bounded locks and memory, however large the backlog of old mail.
BATCH_SIZE = 200


@dataclass(frozen=True, slots=True)
class Purged:
    cutoff: datetime
    emails: int
    blobs: int
    dry_run: bool


async def purge_emails(
    session_factory: async_sessionmaker[AsyncSession],
    store: BlobStore,
    *,
    older_than_days: float,
    dry_run: bool = False,
) -> Purged:
    """Delete emails received more than `older_than_days` ago, oldest first, in batches.

    With `dry_run`, nothing changes: the counts are what would go (a blob counts when no email
    received since the cutoff references it).
    """
    cutoff = utcnow() - timedelta(days=older_than_days)
    emails = blobs = 0
    after = None
    counted: set[str] = set()  # dry run: a blob shared across batches counts once
    while True:
        async with session_factory() as session:
            rows = await EmailRepository(session).ids_received_before(
                cutoff, after=after if dry_run else None, limit=BATCH_SIZE
            )
            if not rows:
                break
            ids = [email_id for _, email_id in rows]
            if dry_run:
                after = rows[-1]
                attachments = AttachmentRepository(session)
                keys, _ = await EmailRepository(session).removal_keys(ids)
                keys |= await attachments.blob_keys_for(ids)
                emails += len(ids)
                for key in keys - counted:
                    counted.add(key)
                    blobs += not await attachments.blob_used_since(key, cutoff)
                continue
            removed = await delete_emails(session, store, ids)
        emails += removed.emails
        blobs += removed.blobs_deleted
    return Purged(cutoff=cutoff, emails=emails, blobs=blobs, dry_run=dry_run)


async def purge_expired_emails(ctx: ProcessingContext) -> None:
    """The worker's purge hook: apply EMAIL_RETENTION_DAYS (0 keeps every email)."""
    days = ctx.settings.email_retention_days
    if days <= 0:
        return
    purged = await purge_emails(ctx.session_factory, ctx.blob_store, older_than_days=days)
    if purged.emails:
        logger.info(
            "emails.retention_purged",
            emails=purged.emails,
            blobs_deleted=purged.blobs,
            cutoff=purged.cutoff.isoformat(),
            retention_days=days,
        )
