"""Threads assigned for a whole batch at once (as the emails writer does): later messages see
what earlier ones in the same batch started, and a merge in the middle of a batch moves the
keys the batch added before it."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from sqlalchemy import delete, select

from app.emails.feed import FeedRepository
from app.emails.models import FeedCounter, Thread, ThreadKey
from app.emails.threads import ThreadRepository


def _ids(*names: str) -> list[str]:
    tag = uuid.uuid4().hex[:8]
    return [f"{name}-{tag}@example.org" for name in names]


async def test_a_batch_of_one_conversation_is_one_thread(app: FastAPI) -> None:
    root, reply, other = _ids("root", "reply", "other")
    async with app.state.services.session_factory() as session:
        targets = await ThreadRepository(session).assign_many(
            [(root, []), (reply, [root]), (other, [])]
        )
        await session.commit()
    assert targets[0] == targets[1] != targets[2]
    async with app.state.services.session_factory() as session:
        result = await session.execute(select(ThreadKey.key, ThreadKey.thread_id))
        rows = {key: thread for key, thread in result.all()}
    assert rows[root] == rows[reply] == targets[0] and rows[other] == targets[2]


async def test_a_merge_inside_a_batch_moves_what_the_batch_added(app: FastAPI) -> None:
    """Two replies of a parent Kave has not seen start two threads; the parent, later in the
    same batch, names both (as its References would): one thread, the other merged into it."""
    a, b, parent = _ids("a", "b", "parent")
    async with app.state.services.session_factory() as session:
        threads = ThreadRepository(session)
        targets = await threads.assign_many([(a, []), (b, []), (parent, [a, b])])
        await session.commit()
    assert targets[0] != targets[1]
    survivor = targets[2]
    assert survivor in targets[:2]
    async with app.state.services.session_factory() as session:
        result = await session.execute(
            select(ThreadKey.key, ThreadKey.thread_id).where(ThreadKey.key.in_([a, b, parent]))
        )
        keys = {key: thread for key, thread in result.all()}
        merged = next(t for t in targets[:2] if t != survivor)
        loser = await session.get(Thread, merged)
        resolved = await ThreadRepository(session).resolve(merged)
    assert set(keys.values()) == {survivor}
    assert loser is not None and loser.merged_into == survivor
    assert resolved is not None and resolved.id == survivor


async def test_positions_for_a_batch_are_consecutive(app: FastAPI) -> None:
    async with app.state.services.session_factory() as session:
        feed = FeedRepository(session)
        first = await feed.take_position()
        batch = await feed.take_positions(5)
        after = await feed.take_position()
        assert await feed.take_positions(0) == []
        await session.commit()
    assert batch == list(range(first + 1, first + 6))
    assert after == first + 6


async def test_a_rebuilt_counter_stays_above_a_position_handed_out(app: FastAPI) -> None:
    """The counter row deleted by hand is put back at the feed's end; a replayed email that
    the transaction deleted (to write it again) still holds its position, so the rebuilt
    counter starts above that one too, never under what a consumer has seen."""
    async with app.state.services.session_factory() as session:
        feed = FeedRepository(session)
        seen = await feed.take_position() + 10  # as if an email there was just deleted
        await session.execute(delete(FeedCounter))
        positions = await feed.take_positions(2, at_least=seen)
        await session.commit()
    assert positions == [seen + 1, seen + 2]
