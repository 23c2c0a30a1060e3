"""Both blob stores against real backends: a temporary directory and an S3 protocol server."""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from botocore.exceptions import ClientError

from app.core.config import Settings
from app.core.errors import NotFound
from app.storage.base import (
    BlobNotFound,
    BlobStore,
    attachment_content_disposition,
    content_key,
)
from app.storage.errors import StorageUnavailable
from app.storage.factory import build_blob_store
from app.storage.local import _SYNCFS, LocalBlobStore
from app.storage.s3 import S3BlobStore, _s3_errors
from app.tests.fixtures.s3 import (
    delete_bucket,
    make_s3_settings,
    start_moto_server,
    unique_bucket_name,
)
from app.tests.server_process import free_port

MB = 1024 * 1024
# Per operation: an outage must be reported, not waited out. A refused connection fails at once
# plus botocore's single retry (backoff at most 1 s); the bound is loose so a busy CI machine
# cannot make it flaky, yet far below botocore's defaults (five attempts with backoff).
DOWN_BUDGET_SECONDS = 10.0


@pytest.fixture(params=["local", "s3"])
def blob_store(request: pytest.FixtureRequest) -> BlobStore:
    store: BlobStore = request.getfixturevalue(f"{request.param}_store")
    return store


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


# --- the contract, on both backends ---------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 20 * MB], ids=["empty", "one-byte", "20MB"])
async def test_round_trip_keeps_bytes(blob_store: BlobStore, length: int) -> None:
    data = os.urandom(length)
    digest, key = content_key(data)

    await blob_store.put(key, data, content_type="application/pdf")

    assert sha256(await blob_store.get(key)) == digest
    assert await blob_store.size(key) == length
    async with await blob_store.open_stream(key) as stream:
        assert stream.size == length
        chunks = [chunk async for chunk in stream]
    assert sha256(b"".join(chunks)) == digest
    assert all(0 < len(chunk) <= 1 << 16 for chunk in chunks)


async def test_stream_honours_chunk_size_and_can_be_abandoned(blob_store: BlobStore) -> None:
    data = os.urandom(100_000)
    _, key = content_key(data)
    await blob_store.put(key, data)

    stream = await blob_store.open_stream(key, chunk_size=10_000)
    first = await anext(stream)
    await stream.aclose()
    await stream.aclose()  # idempotent

    assert first == data[: len(first)]
    assert 0 < len(first) <= 10_000
    assert [chunk async for chunk in stream] == []
    # The store is still usable after a half-read stream was dropped.
    assert await blob_store.get(key) == data


async def test_put_is_idempotent(blob_store: BlobStore) -> None:
    data = b"same bytes, same key"
    _, key = content_key(data)

    await blob_store.put(key, data)
    await blob_store.put(key, data)

    assert await blob_store.get(key) == data
    assert await blob_store.size(key) == len(data)


async def test_put_many_stores_each_blob(blob_store: BlobStore) -> None:
    blobs = [os.urandom(n) for n in (0, 10, 70_000)]
    items = [(content_key(data)[1], data, "application/octet-stream") for data in blobs]
    await blob_store.put_many([*items, items[1]])  # the same blob twice is harmless
    for key, data, _ in items:
        assert await blob_store.get(key) == data
    await blob_store.put_many([])


async def test_exists_size_and_delete(blob_store: BlobStore) -> None:
    data = b"to be deleted"
    _, key = content_key(data)
    assert not await blob_store.exists(key)
    assert await blob_store.size(key) is None

    await blob_store.put(key, data)
    assert await blob_store.exists(key)
    assert await blob_store.size(key) == len(data)

    await blob_store.delete(key)
    assert not await blob_store.exists(key)
    await blob_store.delete(key)  # deleting a missing blob is fine


async def test_missing_key_raises_blob_not_found(blob_store: BlobStore) -> None:
    _, key = content_key(b"never stored")

    with pytest.raises(BlobNotFound) as caught:
        await blob_store.get(key)
    assert isinstance(caught.value, NotFound)
    assert caught.value.code == "blob_not_found"
    assert caught.value.status_code == 404
    assert caught.value.key == key

    # Raised by open_stream itself, before a response could have started.
    with pytest.raises(BlobNotFound):
        await blob_store.open_stream(key)


async def test_check_passes_when_up(blob_store: BlobStore) -> None:
    await blob_store.check()


# --- keys and headers -----------------------------------------------------------------------


def test_content_key_is_stable_and_derived_from_content_only() -> None:
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert content_key(b"") == (empty, f"sha256/e3/b0/{empty}")
    assert content_key(b"abc") == content_key(b"abc")
    assert content_key(b"abc") != content_key(b"abd")
    digest, key = content_key(b"abc")
    assert key == f"sha256/{digest[:2]}/{digest[2:4]}/{digest}"


def test_content_disposition_is_rfc6266_and_injection_safe() -> None:
    header = attachment_content_disposition('Résumé "final"\r\nX-Evil: 1/../a.pdf')
    assert "\r" not in header
    assert "\n" not in header
    assert header.startswith('attachment; filename="R_sum_ _final_X-Evil: 1_.._a.pdf"; ')
    encoded = header.split("filename*=UTF-8''", 1)[1]
    assert unquote(encoded) == 'Résumé "final"X-Evil: 1_.._a.pdf'
    assert header.isascii()
    assert attachment_content_disposition("") == (
        "attachment; filename=\"download\"; filename*=UTF-8''download"
    )


# --- local disk -----------------------------------------------------------------------------


async def test_local_creates_root_and_leaves_no_temp_files(local_store: LocalBlobStore) -> None:
    assert not local_store.root.exists()
    keys = []
    for index in range(5):
        data = f"blob {index}".encode()
        _, key = content_key(data)
        keys.append(key)
        await local_store.put(key, data)
        await local_store.put(key, data)

    assert files_under(local_store.root) == sorted(local_store.path_for(key) for key in keys)


async def test_local_writes_again_into_a_directory_removed_meanwhile(
    local_store: LocalBlobStore,
) -> None:
    """The store remembers which directories exist; one removed behind its back (an operator
    clearing space) is created again, not reported as a failure."""
    first, second = b"first blob", b"second blob"
    key = content_key(first)[1]
    await local_store.put(key, first)
    directory = local_store.path_for(key).parent
    for path in directory.iterdir():
        path.unlink()
    directory.rmdir()
    same_directory = key.rsplit("/", 1)[0] + "/" + sha256(second)
    await local_store.put_many([(same_directory, second, "text/plain")])
    assert await local_store.get(same_directory) == second


@pytest.mark.skipif(_SYNCFS is None, reason="syncfs is Linux's")
async def test_local_deferred_writes_are_flushed_once_by_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`durable=False` skips the per-blob fsyncs; `sync` flushes them all with one syncfs on
    the store's filesystem, and only when something was written since the last flush."""
    assert _SYNCFS is not None
    flushed: list[tuple[int, int]] = []

    def syncfs(fd: int) -> int:
        flushed.append((os.fstat(fd).st_dev, os.fstat(fd).st_ino))
        return _SYNCFS(fd)

    fsyncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: fsyncs.append(fd) or real_fsync(fd))
    store = LocalBlobStore(tmp_path / "blobs", syncfs=syncfs)
    blobs = [(content_key(data)[1], data, "text/plain") for data in (b"one", b"two", b"three")]
    await store.put_many(blobs, durable=False)
    assert fsyncs == []  # nothing flushed per blob (nor per directory)
    for key, data, _ in blobs:
        assert await store.get(key) == data  # readable before the flush
    await store.sync()
    root = store.root.stat()
    assert flushed == [(root.st_dev, root.st_ino)]
    await store.sync()  # nothing deferred since
    await store.put_many(blobs[:1])  # a durable write needs no flush either
    await store.sync()
    assert len(flushed) == 1
    assert fsyncs  # the durable write paid its own
    await store.put_many(blobs[1:], durable=False)
    await store.sync()
    assert len(flushed) == 2


async def test_local_failed_flush_is_reported(tmp_path: Path) -> None:
    def failing(fd: int) -> int:
        ctypes.set_errno(errno.EIO)
        return -1

    store = LocalBlobStore(tmp_path / "blobs", syncfs=failing)
    await store.put_many([(content_key(b"x")[1], b"x", "text/plain")], durable=False)
    with pytest.raises(StorageUnavailable, match="EIO"):
        await store.sync()


async def test_local_without_syncfs_every_write_is_durable_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsyncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: fsyncs.append(fd) or real_fsync(fd))
    store = LocalBlobStore(tmp_path / "blobs", syncfs=None)  # as on macOS
    key = content_key(b"data")[1]
    await store.put_many([(key, b"data", "text/plain")], durable=False)
    # The file, its directory, and each new directory's parent: no flush is left for later.
    assert len(fsyncs) >= 2
    await store.sync()
    assert await store.get(key) == b"data"


async def test_local_failed_write_leaves_nothing_behind(
    local_store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    data = b"will not fit"
    _, key = content_key(data)

    with pytest.raises(StorageUnavailable, match="ENOSPC"):
        await local_store.put(key, data)

    assert files_under(local_store.root) == []
    assert not await local_store.exists(key)


@pytest.mark.parametrize(
    "key",
    [
        "../escape",
        "/etc/passwd",
        "sha256/../../escape",
        "",
        "a//b",
        "./a",
        "a/.",
        "a\\..\\b",
        "a\0",
    ],
)
async def test_local_rejects_keys_that_leave_the_root(
    local_store: LocalBlobStore, key: str
) -> None:
    with pytest.raises(ValueError, match="invalid storage key"):
        local_store.path_for(key)
    with pytest.raises(ValueError):
        await local_store.put(key, b"x")
    with pytest.raises(ValueError):
        await local_store.get(key)
    with pytest.raises(ValueError):
        await local_store.delete(key)
    assert not (local_store.root.parent / "escape").exists()


async def test_local_check_reports_unusable_directory(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_bytes(b"")
    with pytest.raises(StorageUnavailable):
        await LocalBlobStore(not_a_directory).check()


async def test_local_has_no_presigned_url(local_store: LocalBlobStore) -> None:
    _, key = content_key(b"x")
    url = await local_store.presigned_url(
        key, expires_in=60, filename="a.txt", content_type="text/plain"
    )
    assert url is None


# --- S3 -------------------------------------------------------------------------------------


async def test_s3_presigned_url_downloads_with_disposition(s3_store: S3BlobStore) -> None:
    data = os.urandom(4096)
    _, key = content_key(data)
    await s3_store.put(key, data, content_type="application/pdf")

    url = await s3_store.presigned_url(
        key, expires_in=60, filename="Résumé 2024.pdf", content_type="application/pdf"
    )

    assert url is not None
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"R_sum_ 2024.pdf\"; filename*=UTF-8''R%C3%A9sum%C3%A9%202024.pdf"
    )


async def test_s3_create_makes_missing_bucket_with_endpoint(s3_endpoint_url: str) -> None:
    settings = make_s3_settings(s3_endpoint_url, unique_bucket_name())
    store = await build_blob_store(settings)
    try:
        assert isinstance(store, S3BlobStore)
        await store.check()
        # Creating again (bucket now exists) is fine.
        again = await S3BlobStore.create(settings)
        await again.close()
    finally:
        await store.close()
        await delete_bucket(settings)


async def test_s3_check_reports_missing_bucket(s3_endpoint_url: str) -> None:
    settings = make_s3_settings(s3_endpoint_url, unique_bucket_name())
    store = await S3BlobStore.create(settings, ensure_bucket=False)
    try:
        with pytest.raises(StorageUnavailable, match="bucket"):
            await store.check()
        with pytest.raises(StorageUnavailable, match="NoSuchBucket"):
            await store.put("k", b"x")
    finally:
        await store.close()


async def test_s3_down_is_reported_quickly() -> None:
    settings = make_s3_settings(f"http://127.0.0.1:{free_port()}", unique_bucket_name())
    _, key = content_key(b"x")
    timings: dict[str, float] = {}

    async def expect_unavailable(name: str, operation: Awaitable[object]) -> None:
        started = time.monotonic()
        with pytest.raises(StorageUnavailable) as caught:
            await operation
        timings[name] = time.monotonic() - started
        assert caught.value.status_code == 503
        assert "testing" not in caught.value.message  # never the credentials

    await expect_unavailable("create", S3BlobStore.create(settings))
    store = await S3BlobStore.create(settings, ensure_bucket=False)
    try:
        await expect_unavailable("put", store.put(key, b"x"))
        await expect_unavailable("get", store.get(key))
        await expect_unavailable("open_stream", store.open_stream(key))
        await expect_unavailable("exists", store.exists(key))
        await expect_unavailable("delete", store.delete(key))
        await expect_unavailable("check", store.check())
    finally:
        await store.close()

    print("s3-down timings:", {name: round(seconds, 3) for name, seconds in timings.items()})
    assert max(timings.values()) < DOWN_BUDGET_SECONDS


async def test_s3_outage_then_recovery_on_the_same_port() -> None:
    server, url = start_moto_server()
    port = int(url.rsplit(":", 1)[1])
    settings = make_s3_settings(url, unique_bucket_name())
    store = await S3BlobStore.create(settings)
    try:
        _, key_before = content_key(b"before the outage")
        await store.put(key_before, b"before the outage")

        server.stop()
        _, key_during = content_key(b"during the outage")
        with pytest.raises(StorageUnavailable):
            await store.put(key_during, b"during the outage")
        with pytest.raises(StorageUnavailable):
            await store.check()

        server, _ = start_moto_server(port)
        # moto keeps its state in process memory, so the bucket usually survives a restart.
        try:
            await store.check()
        except StorageUnavailable:
            await (await S3BlobStore.create(settings)).close()
        await store.put(key_during, b"during the outage")
        assert await store.get(key_during) == b"during the outage"
    finally:
        await store.close()
        await delete_bucket(settings)
        server.stop()


@pytest.mark.parametrize(
    ("status", "code", "unavailable"),
    [
        (500, "InternalError", True),
        (503, "SlowDown", True),
        (403, "AccessDenied", True),
        (404, "NoSuchBucket", True),
        (400, "InvalidArgument", False),
        (404, "NoSuchKey", False),
    ],
)
def test_s3_error_mapping(status: int, code: str, unavailable: bool) -> None:
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": "secret details"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    error = ClientError(response, "PutObject")
    expected: type[Exception] = StorageUnavailable if unavailable else ClientError
    with pytest.raises(expected) as caught, _s3_errors("put"):
        raise error
    if unavailable:
        assert "secret details" not in str(caught.value)


async def test_factory_builds_local_store(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None, environment="test", storage_backend="local", storage_local_path=tmp_path
    )
    store = await build_blob_store(settings)
    assert isinstance(store, LocalBlobStore)
    await store.check()
    await store.close()
