"""Blobs in an S3 bucket (AWS, MinIO, moto) through one long-lived aioboto3 client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from typing import Any, Self

import aioboto3
import aiohttp
import structlog
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from pydantic import SecretStr

from app.core.config import Settings
from app.storage.base import (
    DEFAULT_CHUNK_SIZE,
    BlobNotFound,
    BlobStream,
    attachment_content_disposition,
)
from app.storage.errors import StorageUnavailable

# Uploads of one `put_many` in flight at once (one message's attachments, say).
PUT_CONCURRENCY = 8

logger = structlog.get_logger("app.storage.s3")

_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
# 4xx answers that mean "we cannot use the bucket right now", not "this request is wrong":
# an operator fixes them (bucket, credentials, clock) and a retry then succeeds.
_UNUSABLE_CODES = frozenset(
    {
        "NoSuchBucket",
        "AccessDenied",
        "403",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "RequestTimeTooSkewed",
        "SlowDown",
        "Throttling",
        "RequestTimeout",
    }
)
_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    BotoConnectionError,  # botocore: endpoint unreachable, connect timeout, proxy, TLS
    HTTPClientError,  # botocore: read timeout, connection closed mid-response
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    aiohttp.ClientError,
    TimeoutError,
    OSError,
)


def _error_code(exc: ClientError) -> tuple[str, int]:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(error.get("Code", "")), int(status or 0)


def _is_not_found(exc: ClientError) -> bool:
    code, status = _error_code(exc)
    return code in _NOT_FOUND_CODES or (status == 404 and code != "NoSuchBucket")


@contextmanager
def _s3_errors(operation: str) -> Iterator[None]:
    """Turn outages into `StorageUnavailable`; let not-found and programming errors through.

    Messages name the operation and the S3 error code only: botocore's own messages can echo
    request details that have no place in an API response.
    """
    try:
        yield
    except ClientError as exc:
        code, status = _error_code(exc)
        if status >= 500 or status == 429 or code in _UNUSABLE_CODES:
            raise StorageUnavailable(
                f"S3 {operation} failed: {code or status or 'error'}."
            ) from exc
        raise
    except _TRANSPORT_ERRORS as exc:
        raise StorageUnavailable(f"S3 {operation} failed: {type(exc).__name__}.") from exc


class S3BlobStore:
    """Build with `await S3BlobStore.create(settings)`; release with `await store.close()`."""

    def __init__(self, client: Any, bucket: str, exit_stack: AsyncExitStack) -> None:
        self._client = client
        self._bucket = bucket
        self._exit_stack = exit_stack

    @property
    def bucket(self) -> str:
        return self._bucket

    @classmethod
    async def create(
        cls,
        settings: Settings,
        *,
        bucket: str | None = None,
        ensure_bucket: bool | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_attempts: int = 2,
    ) -> Self:
        """Open the client (once, for the life of the store).

        Timeouts are short and botocore retries little (`max_attempts` counts the first try)
        so an outage surfaces in seconds as `StorageUnavailable`; callers retry with backoff.

        `ensure_bucket` (default: only when `s3_endpoint_url` is set, i.e. MinIO or moto in
        development and tests) creates the bucket if it is missing. Against AWS the bucket is
        infrastructure and is never created by the app. If the bucket cannot be ensured
        because S3 is unreachable, the client is closed and `StorageUnavailable` is raised.
        """
        endpoint_url = settings.s3_endpoint_url
        config = Config(
            region_name=settings.s3_region,
            signature_version="s3v4",
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
            # MinIO and moto serve buckets under the path, not as DNS subdomains.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
        )
        session = aioboto3.Session(
            aws_access_key_id=_secret(settings.s3_access_key_id),
            aws_secret_access_key=_secret(settings.s3_secret_access_key),
            region_name=settings.s3_region,
        )
        exit_stack = AsyncExitStack()
        client = await exit_stack.enter_async_context(
            session.client("s3", endpoint_url=endpoint_url, config=config)
        )
        store = cls(client, bucket or settings.s3_bucket, exit_stack)
        if ensure_bucket is None:
            ensure_bucket = endpoint_url is not None
        if ensure_bucket:
            try:
                await store._ensure_bucket()
            except BaseException:
                await store.close()
                raise
        return store

    async def _ensure_bucket(self) -> None:
        with _s3_errors("create bucket"):
            try:
                await self._client.head_bucket(Bucket=self._bucket)
                return
            except ClientError as exc:
                if _error_code(exc)[1] != 404:
                    raise
            try:
                await self._client.create_bucket(Bucket=self._bucket)
            except ClientError as exc:
                # Another process may have won the race.
                if _error_code(exc)[0] not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise
        logger.info("storage.s3.bucket_created", bucket=self._bucket)

    async def put(
        self, key: str, data: bytes, *, content_type: str = "application/octet-stream"
    ) -> None:
        with _s3_errors("put"):
            await self._client.put_object(
                Bucket=self._bucket, Key=key, Body=data, ContentType=content_type
            )

    async def put_many(
        self, blobs: Sequence[tuple[str, bytes, str]], *, durable: bool = True
    ) -> None:
        # A PUT that succeeded is durable: `durable` changes nothing here.
        limit = asyncio.Semaphore(PUT_CONCURRENCY)

        async def put(key: str, data: bytes, content_type: str) -> None:
            async with limit:
                await self.put(key, data, content_type=content_type)

        await asyncio.gather(*(put(*blob) for blob in blobs))

    async def sync(self) -> None:
        return None  # every PUT that returned is already durable

    async def get(self, key: str) -> bytes:
        with _s3_errors("get"):
            response = await self._get_object(key)
            body = response["Body"]
            try:
                data: bytes = await body.read()
            finally:
                body.close()
        return data

    async def open_stream(self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> BlobStream:
        with _s3_errors("get"):
            response = await self._get_object(key)
        body = response["Body"]

        async def close() -> None:
            # Drops the connection unless the body was read to the end (then it was released).
            body.close()

        size = response.get("ContentLength")
        return BlobStream(_read_chunks(body, chunk_size), close, size=size)

    async def _get_object(self, key: str) -> dict[str, Any]:
        try:
            response: dict[str, Any] = await self._client.get_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _is_not_found(exc):
                raise BlobNotFound(key) from exc
            raise
        return response

    async def delete(self, key: str) -> None:
        with _s3_errors("delete"):
            await self._client.delete_object(Bucket=self._bucket, Key=key)

    async def exists(self, key: str) -> bool:
        return await self.size(key) is not None

    async def size(self, key: str) -> int | None:
        with _s3_errors("head"):
            try:
                response = await self._client.head_object(Bucket=self._bucket, Key=key)
            except ClientError as exc:
                # HEAD has no body, so a missing bucket also looks like "404"; check() tells.
                if _is_not_found(exc):
                    return None
                raise
        return int(response["ContentLength"])

    async def presigned_url(
        self, key: str, *, expires_in: int, filename: str, content_type: str
    ) -> str | None:
        # Signing is local (no request is made), so this works even while S3 is down.
        with _s3_errors("presign"):
            url: str = await self._client.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self._bucket,
                    "Key": key,
                    "ResponseContentDisposition": attachment_content_disposition(filename),
                    "ResponseContentType": content_type,
                },
                ExpiresIn=expires_in,
            )
        return url

    async def check(self) -> None:
        with _s3_errors("head bucket"):
            try:
                await self._client.head_bucket(Bucket=self._bucket)
            except ClientError as exc:
                if _error_code(exc)[1] == 404:
                    raise StorageUnavailable("S3 bucket does not exist.") from exc
                raise

    async def close(self) -> None:
        await self._exit_stack.aclose()


async def _read_chunks(body: Any, chunk_size: int) -> AsyncIterator[bytes]:
    with _s3_errors("read"):
        while True:
            chunk: bytes = await body.read(chunk_size)
            if not chunk:
                return
            yield chunk


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()
