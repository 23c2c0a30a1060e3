"""Computing the agent fields again for a stored email, from its kept raw message.

For mail stored before Kave computed them, or after the rules changed. The raw message (or,
for an email built from Mandrill's JSON fields, the stored columns) is parsed again; reply
text, category, sender trust and thread are rewritten; files found inside forwarded messages
and winmail.dat that have no row yet get one (their blobs stored), and existing attachment
rows keep their ids, so download links handed out earlier keep working.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.emails.agent_fields import apply_agent_fields
from app.emails.models import Attachment, Email
from app.emails.repository import AttachmentRepository
from app.emails.threads import ThreadRepository, named_keys, own_key
from app.mail.agent_fields import agent_fields
from app.mail.parsed import ParsedAttachment, ParsedEmail
from app.mail.parser import parse_inbound
from app.storage.base import BlobNotFound, BlobStore, content_key


async def email_ids(session: AsyncSession, *, only_missing: bool) -> Sequence[uuid.UUID]:
    stmt = select(Email.id).order_by(Email.received_at, Email.id)
    if only_missing:
        stmt = stmt.where(Email.category.is_(None))
    return (await session.scalars(stmt)).all()


async def recompute_email(session: AsyncSession, store: BlobStore, email_id: uuid.UUID) -> bool:
    """Recompute one email; False when it is gone. The caller commits."""
    email = await session.get(Email, email_id)
    if email is None:
        return False
    raw: bytes | None = None
    if email.raw_blob_key:
        # A blob lost from the store leaves the columns, which hold most of the message.
        with suppress(BlobNotFound):
            raw = await store.get(email.raw_blob_key)
    parsed = parse_inbound(_message_of(email, raw))
    key = own_key(parsed.message_id or email.message_id, email.event_id or email.id)
    keys = [content_key(att.content) for att in parsed.attachments]
    # Blobs first, outside any lock (content-addressed, so storing one twice is harmless).
    uploaded = await _upload_missing(session, store, email.id, parsed, keys)
    # Then the thread lock, before any of the email's rows is written: the order a worker
    # storing a replay of this email takes them in (lock, then delete the old row). Written
    # first, new attachment rows would hold a key-share lock on the email while waiting for
    # the lock that worker holds while waiting to delete the email: a deadlock.
    await ThreadRepository(session).assign(
        key=key, named=named_keys(parsed.in_reply_to, parsed.references)
    )
    # Under the lock, read the email and its rows again: a replay stored meanwhile replaced
    # them, and no other can until this commits.
    email = await session.get(Email, email_id, populate_existing=True)
    if email is None:
        return False
    with session.no_autoflush:
        await _complete_attachments(session, store, email, parsed, keys, uploaded)
    apply_agent_fields(email, agent_fields(parsed), thread_key=key)
    return True


def _message_of(email: Email, raw: bytes | None) -> dict[str, Any]:
    """The `msg` of an inbound event, as far as the row keeps it: Mandrill's own verdicts
    (DKIM, SPF) live only there."""
    msg: dict[str, Any] = {
        "dkim": {"signed": email.dkim_signed, "valid": email.dkim_valid},
        "spf": {"result": email.spf_result, "detail": email.spf_detail},
        "email": email.envelope_recipient,
    }
    if raw is not None:
        msg["raw_msg"] = raw.decode("utf-8", "surrogateescape")
        return msg
    headers = dict(email.headers or {})
    if email.message_id:
        headers.setdefault("Message-ID", f"<{email.message_id}>")
    return msg | {
        "headers": headers,
        "subject": email.subject,
        "from_email": email.from_address,
        "from_name": email.from_name,
        "text": email.text_body,
        "html": email.html_body,
    }


async def _upload_missing(
    session: AsyncSession,
    store: BlobStore,
    email_id: uuid.UUID,
    parsed: ParsedEmail,
    keys: Sequence[tuple[str, str]],
) -> set[str]:
    """Store the blobs of the files that have no row yet; their keys."""
    stored = {
        (a.sha256, a.filename) for a in await AttachmentRepository(session).list_for_email(email_id)
    }
    uploaded: set[str] = set()
    for att, (sha, blob_key) in zip(parsed.attachments, keys, strict=True):
        if (sha, att.filename) not in stored and blob_key not in uploaded:
            await store.put(blob_key, att.content, content_type=att.content_type)
            uploaded.add(blob_key)
    return uploaded


async def _complete_attachments(
    session: AsyncSession,
    store: BlobStore,
    email: Email,
    parsed: ParsedEmail,
    keys: Sequence[tuple[str, str]],
    uploaded: set[str],
) -> None:
    rows = (
        select(Attachment)
        .where(Attachment.email_id == email.id)
        .order_by(Attachment.position)
        .execution_options(populate_existing=True)
    )
    stored = list((await session.scalars(rows)).all())
    unused = list(stored)
    next_position = max((a.position for a in stored), default=-1) + 1
    ids: list[uuid.UUID] = []
    for att, (sha, blob_key) in zip(parsed.attachments, keys, strict=True):
        row = next((a for a in unused if (a.sha256, a.filename) == (sha, att.filename)), None)
        if row is None:
            if blob_key not in uploaded:  # its row went away since (rare): store it now
                await store.put(blob_key, att.content, content_type=att.content_type)
            row = _new_row(email.id, att, position=next_position, sha=sha, blob_key=blob_key)
            next_position += 1
            session.add(row)
        else:
            unused.remove(row)
        row.parent_id = ids[att.parent] if att.parent is not None else None
        row.source_subject = att.source_subject
        row.source_from = att.source_from
        ids.append(row.id)


def _new_row(
    email_id: uuid.UUID, att: ParsedAttachment, *, position: int, sha: str, blob_key: str
) -> Attachment:
    return Attachment(
        id=uuid.uuid4(),
        email_id=email_id,
        position=position,
        filename=att.filename,
        content_type=att.content_type,
        size=len(att.content),
        sha256=sha,
        blob_key=blob_key,
        content_id=att.content_id,
        inline=att.inline,
    )
