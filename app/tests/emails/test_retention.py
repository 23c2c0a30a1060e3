"""EMAIL_RETENTION_DAYS: old emails go with their unshared blobs, run by the worker's purge hook."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.emails.models import Attachment, Email
from app.emails.retention import purge_emails
from app.processing.models import WebhookEvent
from app.storage.base import BlobStore, content_key
from app.tests.emails.factories import add_email, add_event

SHARED = ("shared.pdf", "application/pdf", b"%PDF in an old and a young email")
OWN = ("own.txt", "text/plain", b"only in the old email")
OLD_RAW = b"Subject: old\r\n\r\nlong ago\r\n"
YOUNG_RAW = b"Subject: young\r\n\r\njust now\r\n"


@pytest.fixture(params=["local", "s3"])
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"storage_backend": request.param, "email_retention_days": 30}


async def _mail(session: AsyncSession, store: BlobStore) -> tuple[Email, Email, WebhookEvent]:
    event = await add_event(session, payload={"event": "inbound", "msg": {"raw_msg": "old"}})
    old = await add_email(
        session,
        store,
        raw=OLD_RAW,
        attachments=[SHARED, OWN],
        received_at=utcnow() - timedelta(days=31),
        event_id=event.id,
    )
    young = await add_email(
        session,
        store,
        raw=YOUNG_RAW,
        attachments=[SHARED],
        received_at=utcnow() - timedelta(days=29),
    )
    return old, young, event


async def _state(session: AsyncSession) -> tuple[set[str], int, str | None]:
    session.expunge_all()
    subjects = set((await session.scalars(select(Email.subject))).all())
    attachments = len((await session.scalars(select(Attachment.id))).all())
    payload = await session.scalar(select(WebhookEvent.payload))
    await session.commit()
    return {s for s in subjects if s}, attachments, payload


def _key(data: bytes) -> str:
    return content_key(data)[1]


async def test_the_worker_purge_deletes_old_emails_and_only_unshared_blobs(
    app: FastAPI, session: AsyncSession
) -> None:
    store: BlobStore = app.state.services.blob_store
    old, _, _ = await _mail(session, store)
    old.subject = "old"
    await session.commit()

    await app.state.services.worker.purge_once()

    subjects, attachments, payload = await _state(session)
    assert subjects == {"Hello"}  # the young email (the factory's subject)
    assert attachments == 1
    assert payload is None  # the webhook payload held the same message
    assert await store.exists(_key(SHARED[2]))
    assert await store.exists(_key(YOUNG_RAW))
    assert not await store.exists(_key(OWN[2]))
    assert not await store.exists(_key(OLD_RAW))


async def test_dry_run_counts_and_changes_nothing(app: FastAPI, session: AsyncSession) -> None:
    store: BlobStore = app.state.services.blob_store
    await _mail(session, store)
    factory = app.state.services.session_factory

    counted = await purge_emails(factory, store, older_than_days=30, dry_run=True)
    assert (counted.emails, counted.blobs) == (1, 2)  # own.txt and the old raw message
    assert (await _state(session))[1] == 3
    assert await store.exists(_key(OWN[2]))

    done = await purge_emails(factory, store, older_than_days=30)
    assert (done.emails, done.blobs) == (1, 2)
    assert (await _state(session))[1] == 1
    again = await purge_emails(factory, store, older_than_days=30)
    assert (again.emails, again.blobs) == (0, 0)


@pytest.mark.parametrize("settings_overrides", [{"email_retention_days": 0}], indirect=False)
async def test_zero_keeps_every_email(app: FastAPI, session: AsyncSession) -> None:
    store: BlobStore = app.state.services.blob_store
    await _mail(session, store)
    await app.state.services.worker.purge_once()
    assert (await _state(session))[1] == 3
    assert await store.exists(_key(OLD_RAW))
