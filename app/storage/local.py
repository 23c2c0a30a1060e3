"""Blobs as files under one directory, for development and single-host deployments."""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path, PurePosixPath

import aiofiles
import aiofiles.os
from aiofiles.threadpool.binary import AsyncBufferedReader

from app.storage.base import DEFAULT_CHUNK_SIZE, BlobNotFound, BlobStream
from app.storage.errors import StorageUnavailable

# Temporary files start with this so they can never collide with a key's last segment (a hex
# digest) and a sweeper can recognise leftovers of a crash.
TEMP_PREFIX = ".tmp-"


def _find_syncfs() -> Callable[[int], int] | None:
    """Linux's syncfs(2): one flush of everything written to a filesystem (files, renames,
    new directories). Python's `os` has no wrapper; elsewhere every write is made durable
    on its own instead."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    syncfs.argtypes = [ctypes.c_int]
    syncfs.restype = ctypes.c_int
    return syncfs


_SYNCFS = _find_syncfs()


@contextmanager
def _disk_errors(operation: str) -> Iterator[None]:
    """Report disk failures (full, read-only, permissions, I/O) as `StorageUnavailable`."""
    try:
        yield
    except (BlobNotFound, ValueError):
        raise
    except OSError as exc:
        reason = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
        raise StorageUnavailable(f"Local storage failed to {operation}: {reason}.") from exc


class LocalBlobStore:
    """Keys are relative POSIX paths under `root`; the directory is created on first write."""

    def __init__(self, root: Path, *, syncfs: Callable[[int], int] | None = _SYNCFS) -> None:
        self.root = root.resolve()
        # Directories known to exist: a write into one skips the checks (a write that finds
        # it gone after all creates it again).
        self._directories: set[Path] = set()
        # Without syncfs, `durable=False` writes are made durable at once, like the others.
        self._syncfs = syncfs
        # Deferred writes finished, and how many of them the last completed flush covered.
        self._written = 0
        self._synced = 0

    def path_for(self, key: str) -> Path:
        """Map `key` to its file; raises ValueError if the key could leave `root`."""
        pure = PurePosixPath(key)
        if (
            not key
            or "\x00" in key
            or "\\" in key
            or pure.is_absolute()
            or any(part in ("", ".", "..") for part in key.split("/"))
        ):
            raise ValueError(f"invalid storage key: {key!r}")
        path = self.root.joinpath(*pure.parts)
        if not path.is_relative_to(self.root):  # pragma: no cover - the checks above suffice
            raise ValueError(f"invalid storage key: {key!r}")
        return path

    async def put(
        self, key: str, data: bytes, *, content_type: str = "application/octet-stream"
    ) -> None:
        # content_type is not kept: it is stored with the attachment row, and local downloads
        # are served by the app with that value.
        await self.put_many([(key, data, content_type)])

    async def put_many(
        self, blobs: Sequence[tuple[str, bytes, str]], *, durable: bool = True
    ) -> None:
        paths = [(self.path_for(key), data) for key, data, _ in blobs]
        deferred = not durable and self._syncfs is not None
        with _disk_errors("write"):
            # One trip to a thread for them all: a trip per step (open, write, flush, fsync,
            # close, rename, fsync) or per blob costs more event-loop time than the writes.
            await asyncio.to_thread(self._write_all, paths, durable=not deferred)
        if deferred and paths:
            self._written += 1

    async def sync(self) -> None:
        written = self._written
        if self._synced >= written or self._syncfs is None:
            return  # a flush that started after those writes has completed (or none deferred)
        with _disk_errors("flush"):
            await asyncio.to_thread(self._flush)
        # Not `= written`: a flush running beside this one may have started later and ended
        # first; what it covered stays covered.
        self._synced = max(self._synced, written)

    def _flush(self) -> None:
        assert self._syncfs is not None
        fd = os.open(self.root, os.O_RDONLY)
        try:
            if self._syncfs(fd) != 0:
                code = ctypes.get_errno()
                raise OSError(code, os.strerror(code))
        finally:
            os.close(fd)

    def _write_all(self, paths: Sequence[tuple[Path, bytes]], *, durable: bool) -> None:
        for path, data in paths:
            directory = path.parent
            if directory in self._directories:
                try:
                    _write_file(path, data, durable=durable)
                    continue
                except FileNotFoundError:
                    self._directories.discard(directory)  # removed meanwhile
            _ensure_directory(directory, durable=durable)
            _write_file(path, data, durable=durable)
            self._directories.add(directory)

    async def get(self, key: str) -> bytes:
        path = self.path_for(key)
        with _disk_errors("read"):
            try:
                async with aiofiles.open(path, "rb") as handle:
                    return await handle.read()
            except (FileNotFoundError, NotADirectoryError) as exc:
                raise BlobNotFound(key) from exc

    async def open_stream(self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> BlobStream:
        path = self.path_for(key)
        with _disk_errors("read"):
            try:
                handle = await aiofiles.open(path, "rb")
            except (FileNotFoundError, NotADirectoryError) as exc:
                raise BlobNotFound(key) from exc
            try:
                size = os.fstat(handle.fileno()).st_size
            except BaseException:
                await handle.close()
                raise
        return BlobStream(_read_chunks(handle, chunk_size), handle.close, size=size)

    async def delete(self, key: str) -> None:
        path = self.path_for(key)
        with _disk_errors("delete"), suppress(FileNotFoundError, NotADirectoryError):
            await aiofiles.os.remove(path)

    async def exists(self, key: str) -> bool:
        return await self.size(key) is not None

    async def size(self, key: str) -> int | None:
        path = self.path_for(key)
        with _disk_errors("stat"):
            try:
                return (await aiofiles.os.stat(path)).st_size
            except (FileNotFoundError, NotADirectoryError):
                return None

    async def presigned_url(
        self, key: str, *, expires_in: int, filename: str, content_type: str
    ) -> str | None:
        # No direct URL for files on our disk: the app streams them itself.
        self.path_for(key)
        return None

    async def check(self) -> None:
        with _disk_errors("prepare the storage directory"):
            await aiofiles.os.makedirs(self.root, exist_ok=True)
        if not await aiofiles.os.access(self.root, os.W_OK | os.X_OK):
            raise StorageUnavailable("Local storage directory is not writable.")

    async def close(self) -> None:
        return None


async def _read_chunks(handle: AsyncBufferedReader, chunk_size: int) -> AsyncIterator[bytes]:
    with _disk_errors("read"):
        while chunk := await handle.read(chunk_size):
            yield chunk


def _write_file(path: Path, data: bytes, *, durable: bool) -> None:
    """Readers see either no file or the complete one, never a partial write. `durable`:
    once this returns, the file and its directory entry survive a crash (else only once the
    filesystem is flushed). The directory must exist."""
    tmp = path.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex}")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.remove(tmp)
        raise
    if durable:
        _fsync_directory(path.parent)


def _ensure_directory(directory: Path, *, durable: bool) -> None:
    if directory.is_dir():
        return
    _ensure_directory(directory.parent, durable=durable)
    with suppress(FileExistsError):
        directory.mkdir()
    if durable:
        _fsync_directory(directory.parent)  # the new directory's entry is durable too


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not possible (nor needed) on every platform.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
