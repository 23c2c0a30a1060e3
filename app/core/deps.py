"""`Annotated` dependency aliases that keep route signatures short."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.storage.base import BlobStore


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    # Function scope: the session is closed before the response is sent, never after it.
    async with request.app.state.session_factory() as session:
        yield session


async def get_ingest_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.ingest_session_factory() as session:
        yield session


def get_blob_store(request: Request) -> BlobStore:
    store: BlobStore = request.app.state.blob_store
    return store


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
IngestSessionDep = Annotated[AsyncSession, Depends(get_ingest_session, scope="function")]
StorageDep = Annotated[BlobStore, Depends(get_blob_store)]
