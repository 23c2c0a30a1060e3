"""The group committer: concurrent acknowledgements share one INSERT, and each request still
learns exactly which of its events were new, or gets its own error."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.core.errors import ServiceUnavailable
from app.db.session import build_ingest_engine
from app.processing.ingest import GroupCommitter, store_batch
from app.processing.models import WebhookEvent
from app.processing.new_events import NewEvent
from app.tests.server_process import free_port


def event(tag: str, *, key: str | None = None) -> NewEvent:
    dedupe = key or hashlib.sha256(tag.encode()).hexdigest()
    return NewEvent("inbound", "inbound", dedupe, None, f'{{"tag": "{tag}"}}')


async def stored(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(WebhookEvent)) or 0)


async def test_concurrent_requests_are_flushed_together_and_each_gets_its_own_ids(
    app: FastAPI, session: AsyncSession, unique: Callable[[], str]
) -> None:
    committer: GroupCommitter = app.state.services.intake.committer
    tag = unique()
    shared = event(f"{tag}-shared")
    requests = [[event(f"{tag}-{i}-a"), event(f"{tag}-{i}-b"), shared] for i in range(20)]

    flushed_groups: list[int] = []
    flush = committer._flush

    async def counting_flush(group: list[Any]) -> None:
        flushed_groups.append(len(group))
        await flush(group)

    committer._flush = counting_flush  # type: ignore[method-assign]
    results = await asyncio.gather(*(committer.store(batch) for batch in requests))

    # Fewer statements than requests: later requests waited for the first statement to finish
    # and were flushed together.
    assert len(flushed_groups) < len(requests)
    assert sum(flushed_groups) == len(requests)
    # Each request's own two events are new; the shared event is new for exactly one request.
    assert all(len(ids) in (2, 3) for ids in results)
    assert sum(len(ids) == 3 for ids in results) == 1
    all_ids = [id_ for ids in results for id_ in ids]
    assert len(set(all_ids)) == len(all_ids) == 41
    assert await stored(session) == 41


async def test_repeats_across_groups_count_as_duplicates(
    app: FastAPI, session: AsyncSession
) -> None:
    committer: GroupCommitter = app.state.services.intake.committer
    batch = [event("repeat-1"), event("repeat-2")]
    first = await store_batch(committer, batch, received=2)
    second = await store_batch(committer, batch, received=2)
    assert (len(first.accepted_ids), first.duplicates) == (2, 0)
    assert (second.accepted_ids, second.duplicates) == ([], 2)
    assert await stored(session) == 2


async def test_one_request_with_bad_data_does_not_fail_the_others(
    app: FastAPI, session: AsyncSession, is_postgres: bool
) -> None:
    if not is_postgres:
        pytest.skip("SQLite stores what PostgreSQL refuses (an over-long key, a NUL)")
    committer: GroupCommitter = app.state.services.intake.committer
    good = [[event(f"good-{i}")] for i in range(5)]
    bad = [event("bad", key="k" * 200)]  # dedupe_key is VARCHAR(64)
    results = await asyncio.gather(
        *(committer.store(batch) for batch in [*good[:3], bad, *good[3:]]),
        return_exceptions=True,
    )
    assert isinstance(results[3], ServiceUnavailable)
    assert all(isinstance(r, list) and len(r) == 1 for i, r in enumerate(results) if i != 3)
    assert await stored(session) == 5


async def test_an_unreachable_database_fails_every_waiting_request_with_503() -> None:
    engine = create_async_engine(
        f"postgresql+asyncpg://kave@127.0.0.1:{free_port()}/nowhere",
        connect_args={"timeout": 2},
    )
    committer = GroupCommitter(build_ingest_engine(engine))
    committer.start()
    try:
        results = await asyncio.gather(
            *(committer.store([event(f"down-{i}")]) for i in range(4)), return_exceptions=True
        )
        assert all(isinstance(r, ServiceUnavailable) for r in results), results
        assert all(r.status_code == 503 for r in results)  # type: ignore[union-attr]
    finally:
        await committer.close()
        await engine.dispose()
    with pytest.raises(ServiceUnavailable):
        await committer.store([event("after-close")])


async def test_close_flushes_what_is_waiting(app: FastAPI, session: AsyncSession) -> None:
    committer: GroupCommitter = app.state.services.intake.committer
    pending = [asyncio.ensure_future(committer.store([event(f"closing-{i}")])) for i in range(10)]
    await asyncio.sleep(0)  # every request has queued its events
    await committer.close()
    results = await asyncio.gather(*pending)
    assert [len(ids) for ids in results] == [1] * 10
    assert await stored(session) == 10
