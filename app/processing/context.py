from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.storage.base import BlobStore


@dataclass(frozen=True, slots=True)
class ProcessingContext:
    """What a background task needs. Tasks get ids and this, never a request's session."""

    settings: Settings
    session_factory: async_sessionmaker[AsyncSession]
    blob_store: BlobStore
    owner: str
