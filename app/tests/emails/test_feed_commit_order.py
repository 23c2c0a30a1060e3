"""Feed positions follow commit order: a transaction that took a position and has not
committed holds back every later one, so a reader never skips an email (the trap of a plain
sequence, whose values commit out of order). PostgreSQL: SQLite has one writer anyway."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.emails.feed import FeedRepository
from app.emails.models import Email


def _email() -> Email:
    return Email(id=uuid.uuid4(), received_at=utcnow(), raw_size=0)


async def test_a_later_position_waits_for_the_earlier_commit(
    app: FastAPI, is_postgres: bool
) -> None:
    if not is_postgres:
        pytest.skip("concurrent writers need PostgreSQL")
    factory = app.state.services.session_factory
    first, second = _email(), _email()
    async with factory() as early, factory() as reader:
        early.add(first)
        first.feed_position = await FeedRepository(early).take_position()

        async def late_writer() -> None:
            async with factory() as late:
                late.add(second)
                second.feed_position = await FeedRepository(late).take_position()
                await late.commit()

        late_task = asyncio.create_task(late_writer())
        await asyncio.sleep(0.3)
        # The later transaction cannot have a position yet, let alone a committed one.
        assert not late_task.done()
        assert list(await FeedRepository(reader).after(0, limit=10)) == []
        await reader.rollback()

        await early.commit()
        await late_task
        seen = list(await FeedRepository(reader).after(0, limit=10))
    assert [e.id for e in seen] == [first.id, second.id]
    assert first.feed_position is not None and second.feed_position is not None
    assert second.feed_position == first.feed_position + 1


async def test_a_rolled_back_position_leaves_no_gap(app: FastAPI, session: AsyncSession) -> None:
    factory = app.state.services.session_factory
    async with factory() as doomed:
        doomed.add(_email())
        taken = await FeedRepository(doomed).take_position()
        await doomed.rollback()
    kept = _email()
    session.add(kept)
    kept.feed_position = await FeedRepository(session).take_position()
    await session.commit()
    assert kept.feed_position == taken
