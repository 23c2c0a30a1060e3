"""Pick the configured backend; called once from the application lifespan."""

from __future__ import annotations

import structlog

from app.core.config import Settings, StorageBackend
from app.storage.base import BlobStore
from app.storage.errors import StorageUnavailable
from app.storage.local import LocalBlobStore
from app.storage.s3 import S3BlobStore

logger = structlog.get_logger("app.storage")


async def build_blob_store(settings: Settings) -> BlobStore:
    """Return a ready store; the caller owns it and must `await store.close()` on shutdown.

    For S3 with an endpoint URL (MinIO, moto) the bucket is created if missing, and an
    unreachable endpoint raises `StorageUnavailable` here (see `S3BlobStore.create`).
    """
    if settings.storage_backend == StorageBackend.S3:
        try:
            return await S3BlobStore.create(settings)
        except StorageUnavailable:
            # Acknowledging webhooks needs only the database: start anyway, let readiness say
            # 503, and let processing retry until the storage answers.
            logger.warning("storage.unreachable_at_startup", endpoint=settings.s3_endpoint_url)
            return await S3BlobStore.create(settings, ensure_bucket=False)
    return LocalBlobStore(settings.storage_local_path)
