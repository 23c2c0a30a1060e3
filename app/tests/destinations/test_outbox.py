"""The outbox: an email and its notifications commit together or not at all."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.db.base import utcnow
from app.destinations.models import Destination, Notification
from app.destinations.signing import new_secret
from app.emails.models import Email
from app.mandrill.publish import published
from app.processing.new_events import NewEvent, insert_new_events


def _destination() -> Destination:
    now = utcnow()
    return Destination(
        id=uuid.uuid4(),
        url="https://hooks.example.com/kave",
        recipients="*",
        description="",
        enabled=True,
        secret=new_secret(),
        consecutive_failures=0,
        created_at=now,
        updated_at=now,
    )


async def _email(app: FastAPI) -> Email:
    """An email of a stored event (the writer reads what the event produced before)."""
    new = NewEvent("inbound", "inbound", f"outbox-{uuid.uuid4()}", None, "{}")
    async with app.state.services.engine.connect() as conn:
        [event_id] = await insert_new_events(conn, [new], [uuid.uuid4()])
        await conn.commit()
    email = Email(
        event_id=event_id,
        received_at=utcnow(),
        raw_size=0,
        envelope_recipient="inbox@kave.example.com",
        thread_key=f"event:{event_id}",
    )
    email.attachments = []
    return email


async def _counts(app: FastAPI) -> tuple[int, int]:
    async with app.state.services.session_factory() as session:
        emails = await session.scalar(select(func.count()).select_from(Email))
        notifications = await session.scalar(select(func.count()).select_from(Notification))
    return int(emails or 0), int(notifications or 0)


@pytest.fixture
def settings_overrides() -> dict[str, bool]:
    return {"processing_enabled": False}


async def test_commit_writes_both(app: FastAPI) -> None:
    factory = app.state.services.session_factory
    async with factory() as session:
        session.add(_destination())
        await session.commit()
        records = published(await _email(app))
        assert records.writer is not None
        await records.writer(session, [records])
        await session.commit()
    assert await _counts(app) == (1, 1)


async def test_a_rolled_back_email_leaves_no_notification(app: FastAPI) -> None:
    factory = app.state.services.session_factory
    async with factory() as session:
        session.add(_destination())
        await session.commit()
        records = published(await _email(app))
        assert records.writer is not None
        await records.writer(session, [records])
        await session.flush()
        await session.rollback()  # the crash before the commit
    assert await _counts(app) == (0, 0)


async def test_a_failed_notification_write_leaves_no_email(app: FastAPI) -> None:
    factory = app.state.services.session_factory
    destination = _destination()
    async with factory() as session:
        session.add(destination)
        await session.commit()
        attached: list[object] = []  # strong references: the identity map's are weak
        event.listen(session.sync_session, "before_attach", lambda _, obj: attached.append(obj))
        records = published(await _email(app))
        assert records.writer is not None
        await records.writer(session, [records])
        # The notification now points at no destination: writing it must fail, and with it
        # the email's whole transaction.
        pending = [o for o in attached if isinstance(o, Notification)]
        assert len(pending) == 1
        pending[0].destination_id = uuid.uuid4()
        with pytest.raises((IntegrityError, DBAPIError)):
            await session.commit()
        await session.rollback()
    assert await _counts(app) == (0, 0)
