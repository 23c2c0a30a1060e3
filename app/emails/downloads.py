"""Serving stored blobs: a streamed download, or a redirect to a presigned S3 URL."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.background import BackgroundTask
from starlette.responses import RedirectResponse, StreamingResponse

from app.emails.errors import AttachmentNotFound, EmailNotFound, RawMessageNotAvailable
from app.emails.models import Attachment, Email
from app.emails.repository import AttachmentRepository, EmailRepository
from app.storage.base import BlobNotFound, BlobStore, attachment_content_disposition

# OpenAPI for routes that answer with bytes rather than JSON.
BINARY_CONTENT: dict[str, Any] = {"schema": {"type": "string", "format": "binary"}}


async def stream_blob(
    store: BlobStore, key: str, *, content_type: str, disposition: str, size: int | None
) -> StreamingResponse:
    """Open first (a missing blob is a 404 before any byte is sent), then stream in chunks."""
    stream = await store.open_stream(key)
    length = stream.size if stream.size is not None else size
    headers = {
        # Passed as a header, not media_type, so Starlette does not append a charset to text/*.
        "Content-Type": content_type,
        "Content-Disposition": disposition,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
    }
    if length is not None:
        headers["Content-Length"] = str(length)
    return StreamingResponse(stream, headers=headers, background=BackgroundTask(stream.aclose))


async def presigned_redirect(
    store: BlobStore, key: str, *, filename: str, content_type: str, expires_in: int
) -> RedirectResponse | None:
    """A 307 to a time-limited URL, or None when the backend has none (local storage)."""
    url = await store.presigned_url(
        key, expires_in=expires_in, filename=filename, content_type=content_type
    )
    if url is None:
        return None
    # The URL is valid whether or not the object exists; a missing blob is our 404, not S3's.
    if not await store.exists(key):
        raise BlobNotFound(key)
    return RedirectResponse(url, status_code=307, headers={"Cache-Control": "private, no-store"})


async def find_attachment(session: AsyncSession, attachment_id: uuid.UUID) -> Attachment:
    attachment = await AttachmentRepository(session).get(attachment_id)
    if attachment is None:
        raise AttachmentNotFound()
    return attachment


async def stream_attachment(store: BlobStore, attachment: Attachment) -> StreamingResponse:
    """An attachment's bytes, with its stored type and name, as every download route sends it."""
    return await stream_blob(
        store,
        attachment.blob_key,
        content_type=attachment.content_type,
        disposition=attachment_content_disposition(attachment.filename),
        size=attachment.size,
    )


async def stream_raw_message(
    session: AsyncSession, store: BlobStore, email_id: uuid.UUID
) -> StreamingResponse:
    """An email's raw message as `<id>.eml`; 404 for an unknown email or one kept without."""
    email: Email | None = await EmailRepository(session).get(email_id)
    if email is None:
        raise EmailNotFound()
    if email.raw_blob_key is None:
        raise RawMessageNotAvailable()
    return await stream_blob(
        store,
        email.raw_blob_key,
        content_type="message/rfc822",
        disposition=attachment_content_disposition(f"{email.id}.eml"),
        size=email.raw_size,
    )
