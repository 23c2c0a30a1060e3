"""Serving stored blobs: a streamed download, or a redirect to a presigned S3 URL."""

from __future__ import annotations

from typing import Any

from starlette.background import BackgroundTask
from starlette.responses import RedirectResponse, StreamingResponse

from app.storage.base import BlobNotFound, BlobStore

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
