"""The storage contract every backend fulfils, plus the helpers they share.

Keys are derived from content (`content_key`), never from user-supplied names, so a key always
names the same bytes: `put` is idempotent and a blob never needs updating in place.

Errors callers should expect from any backend:

- `BlobNotFound` (a `NotFound`, HTTP 404) from `get` and `open_stream` when the key is missing;
- `StorageUnavailable` (HTTP 503) whenever the backend is down, unreachable, slow past its
  timeouts, full or refusing us; the operation may succeed if retried later;
- `ValueError` for a key that is not a valid storage key (a bug in the caller, never retried).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Protocol, Self
from urllib.parse import quote

from app.core.errors import NotFound

DEFAULT_CHUNK_SIZE = 1 << 16


class BlobNotFound(NotFound):
    code = "blob_not_found"
    message = "The stored blob does not exist."

    def __init__(self, key: str) -> None:
        # The key is a content hash, safe to show; it helps operators find orphaned rows.
        super().__init__(f"No blob stored under {key}.")
        self.key = key


def content_key(data: bytes) -> tuple[str, str]:
    """Return `(sha256 hex digest, storage key)` for `data`.

    The key fans out on the first two byte pairs (`sha256/ab/cd/<hex>`) so no directory or
    listing prefix grows unbounded.
    """
    digest = hashlib.sha256(data).hexdigest()
    return digest, f"sha256/{digest[:2]}/{digest[2:4]}/{digest}"


_UNSAFE_FALLBACK = re.compile(r'[^\x20-\x7e]|["\\%;]')
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def attachment_content_disposition(filename: str) -> str:
    """Build an RFC 6266 `attachment` header value for a user-supplied `filename`.

    `filename*` carries the exact name (RFC 5987 UTF-8 percent-encoding); `filename` is a
    quoted ASCII fallback for old clients. Control characters (header injection) and path
    separators are removed from both.
    """
    name = _CONTROL.sub("", filename).replace("/", "_").replace("\\", "_").strip() or "download"
    fallback = _UNSAFE_FALLBACK.sub("_", name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


class BlobStream:
    """An open blob, read as an async iterator of chunks.

    Returned by `BlobStore.open_stream`, which has already checked the blob exists (so a
    missing key raises `BlobNotFound` before any response starts) and holds the underlying file
    or HTTP connection. The resource is released when the iteration ends or fails, or on
    `aclose()`; a stream that may be abandoned half-way should be closed, e.g.
    `StreamingResponse(stream, background=BackgroundTask(stream.aclose))` or `async with`.
    Read errors during iteration are raised as `StorageUnavailable`.
    """

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        close: Callable[[], Awaitable[None]],
        *,
        size: int | None = None,
    ) -> None:
        self._chunks = chunks
        self._close = close
        self._closed = False
        self.size = size

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        try:
            return await self._chunks.__anext__()
        except BaseException:
            # StopAsyncIteration, a read error or cancellation: release the resource now.
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if isinstance(self._chunks, AsyncGenerator):
                await self._chunks.aclose()
        finally:
            await self._close()

    async def read_all(self) -> bytes:
        return b"".join([chunk async for chunk in self])

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class BlobStore(Protocol):
    """Content-addressed blob storage (S3 or the local disk)."""

    async def put(
        self, key: str, data: bytes, *, content_type: str = "application/octet-stream"
    ) -> None:
        """Store `data` under `key`, replacing whatever is there (same key, same bytes)."""
        ...

    async def put_many(
        self, blobs: Sequence[tuple[str, bytes, str]], *, durable: bool = True
    ) -> None:
        """`put` for several `(key, data, content_type)` at once: returns when all are
        stored; on a failure, some may be stored (the same bytes under the same key).

        `durable=False`: readable at once, but they may survive a crash only once `sync`
        has returned (a backend whose writes are always durable ignores it)."""
        ...

    async def sync(self) -> None:
        """Make every `durable=False` write that returned before this call durable: one
        flush for many writes, where each durable write pays its own."""
        ...

    async def get(self, key: str) -> bytes:
        """Return the whole blob; raises `BlobNotFound`."""
        ...

    async def open_stream(self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> BlobStream:
        """Open the blob for streaming; raises `BlobNotFound` here, before any chunk."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the blob; a missing key is not an error."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def size(self, key: str) -> int | None:
        """Size in bytes, or None when the blob is missing."""
        ...

    async def presigned_url(
        self, key: str, *, expires_in: int, filename: str, content_type: str
    ) -> str | None:
        """A time-limited direct download URL, or None when the backend has none (local).

        The URL does not check that the blob exists; callers look it up first.
        """
        ...

    async def check(self) -> None:
        """Readiness probe: return if usable, else raise `StorageUnavailable`."""
        ...

    async def close(self) -> None: ...
