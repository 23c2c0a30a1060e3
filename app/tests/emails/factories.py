"""Rows written straight through the session (and blobs into the store) for the API tests."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.deliveries.models import Delivery
from app.emails.models import Attachment, Email
from app.processing.models import WebhookEvent
from app.storage.base import BlobStore, content_key


async def add_email(
    session: AsyncSession,
    store: BlobStore | None = None,
    *,
    subject: str | None = "Hello",
    from_address: str | None = "alice@example.org",
    from_name: str | None = "Alice Example",
    to: Sequence[str] = ("inbox@kave.example.com",),
    cc: Sequence[str] = (),
    envelope_recipient: str | None = None,
    received_at: datetime | None = None,
    raw: bytes | None = None,
    attachments: Sequence[tuple[str, str, bytes]] = (),
    commit: bool = True,
    **fields: Any,
) -> Email:
    """An email with optional raw source and attachments (name, content type, bytes)."""
    raw_sha, raw_key = content_key(raw) if raw is not None else (None, None)
    if raw is not None and store is not None and raw_key is not None:
        await store.put(raw_key, raw, content_type="message/rfc822")
    values: dict[str, Any] = {
        "references": [],
        "headers": {"Subject": subject or ""},
        "text_body": "text",
        "html_body": "<p>html</p>",
        "spam_rules": [],
        "tags": [],
    }
    values.update(fields)
    email = Email(
        id=uuid.uuid4(),
        message_id=f"{uuid.uuid4().hex}@example.org",
        raw_sha256=raw_sha,
        raw_blob_key=raw_key,
        raw_size=len(raw or b""),
        subject=subject,
        from_address=from_address,
        from_name=from_name,
        to=[{"email": a, "name": None} for a in to],
        cc=[{"email": a, "name": None} for a in cc],
        reply_to=[],
        recipients_text=" ".join(a.lower() for a in [*to, *cc]),
        envelope_recipient=envelope_recipient,
        received_at=received_at or utcnow(),
        **values,
    )
    session.add(email)
    for position, (filename, content_type, data) in enumerate(attachments):
        sha, key = content_key(data)
        if store is not None:
            await store.put(key, data, content_type=content_type)
        session.add(
            Attachment(
                id=uuid.uuid4(),
                email_id=email.id,
                position=position,
                filename=filename,
                content_type=content_type,
                size=len(data),
                sha256=sha,
                blob_key=key,
                inline=False,
            )
        )
    if commit:
        await session.commit()
    return email


async def attachment_ids(session: AsyncSession, email_id: uuid.UUID) -> list[uuid.UUID]:
    """Attachment ids in position order; ends the read transaction, since on SQLite the app
    has a single connection and a test holding it would starve the request."""
    stmt = (
        select(Attachment.id).where(Attachment.email_id == email_id).order_by(Attachment.position)
    )
    ids = list((await session.scalars(stmt)).all())
    await session.commit()
    return ids


async def add_event(
    session: AsyncSession,
    *,
    status: str = "processed",
    kind: str = "inbound",
    event_type: str | None = None,
    payload: Any = None,
    received_at: datetime | None = None,
    **fields: Any,
) -> WebhookEvent:
    """A webhook event in any state; `payload` is JSON-encoded unless it is None."""
    now = utcnow()
    event = WebhookEvent(
        id=uuid.uuid4(),
        kind=kind,
        event_type=event_type or kind,
        dedupe_key=uuid.uuid4().hex,
        payload=None if payload is None else orjson.dumps(payload).decode(),
        payload_bytes=0 if payload is None else len(orjson.dumps(payload)),
        status=status,
        received_at=received_at or now,
        **({"next_attempt_at": now} | fields),
    )
    session.add(event)
    await session.commit()
    return event


async def add_delivery(
    session: AsyncSession,
    *,
    kind: str = "message",
    event_type: str = "open",
    message_id: str | None = None,
    recipient: str | None = "bob@example.org",
    occurred_at: datetime | None = None,
) -> Delivery:
    delivery = Delivery(
        id=uuid.uuid4(),
        kind=kind,
        event_type=event_type,
        message_id=message_id,
        recipient=recipient,
        occurred_at=occurred_at,
        details={"event": event_type},
    )
    session.add(delivery)
    await session.commit()
    return delivery
