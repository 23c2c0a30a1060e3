"""Events are processed in batches (one claim, one commit), yet each keeps its own outcome:
one bad event does not hold back the others, and a lost lease writes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from app.deliveries.models import Delivery
from app.mandrill.tasks import process_delivery
from app.processing import tasks as tasks_module
from app.processing.context import ProcessingContext
from app.processing.inbox import ClaimedEvent, EventRepository
from app.processing.models import EventKind, WebhookEvent
from app.processing.new_events import NewEvent, insert_new_events
from app.processing.outcomes import Records, commit_processed
from app.tests.support import message_event, post_events, wait_until


async def by_status(app: FastAPI) -> dict[str, int]:
    async with app.state.services.session_factory() as s:
        rows = await s.execute(
            select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)
        )
        return {status: n for status, n in rows.all()}


async def test_a_burst_is_committed_in_batches(
    client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_sizes: list[int] = []

    async def counting_commit(
        ctx: ProcessingContext, items: Sequence[tuple[ClaimedEvent, Records]]
    ) -> Any:
        batch_sizes.append(len(items))
        return await commit_processed(ctx, items)

    monkeypatch.setattr(tasks_module, "commit_processed", counting_commit)
    response = await post_events(client, [message_event("open") for _ in range(60)])
    assert response.json() == {"accepted": 60, "duplicates": 0}

    async def all_processed() -> bool:
        return (await by_status(app)).get("processed") == 60

    await wait_until(all_processed)
    assert sum(batch_sizes) == 60
    assert len(batch_sizes) < 60 and max(batch_sizes) > 1
    async with app.state.services.session_factory() as s:
        assert await s.scalar(select(func.count()).select_from(Delivery)) == 60


async def test_an_event_whose_records_the_database_refuses_does_not_hold_back_the_rest(
    client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def handler(ctx: ProcessingContext, event: ClaimedEvent) -> Records:
        if event.event_type == "click":
            # NOT NULL columns left empty: refused at commit, on SQLite and PostgreSQL alike.
            return Records(event.id, Delivery, [Delivery(event_id=event.id)])
        return await process_delivery(ctx, event)

    monkeypatch.setitem(app.state.services.worker.handlers, EventKind.MESSAGE, handler)
    events = [message_event("open") for _ in range(10)]
    events.insert(4, message_event("click"))
    response = await post_events(client, events)
    assert response.json() == {"accepted": 11, "duplicates": 0}

    async def settled() -> bool:
        seen = await by_status(app)
        return seen.get("processed") == 10 and seen.get("failed") == 1

    await wait_until(settled)
    async with app.state.services.session_factory() as s:
        failed = (
            await s.scalars(select(WebhookEvent).where(WebhookEvent.status == "failed"))
        ).one()
        assert failed.event_type == "click"
        assert failed.last_error is not None and "IntegrityError" in failed.last_error
        assert await s.scalar(select(func.count()).select_from(Delivery)) == 10


@pytest.mark.parametrize("settings_overrides", [{"processing_enabled": False}])
async def test_commit_writes_only_the_events_whose_lease_is_still_held(app: FastAPI) -> None:
    ctx: ProcessingContext = app.state.services.worker.ctx
    new = [
        NewEvent("message", "open", f"lease-{i}", None, '{"event": "open", "ts": 1}')
        for i in range(2)
    ]
    async with app.state.services.engine.connect() as conn:
        ids = await insert_new_events(conn, new, [uuid.uuid4() for _ in new])
        await conn.commit()
    async with app.state.services.session_factory() as s:
        claimed = await EventRepository(s).claim(ids, owner=ctx.owner, lease_seconds=60)
        # Another worker took the second event over after our lease ran out.
        await s.execute(
            update(WebhookEvent).where(WebhookEvent.id == ids[1]).values(lease_owner="other")
        )
        await s.commit()
    assert len(claimed) == 2

    items = [
        (
            event,
            Records(
                event.id, Delivery, [Delivery(event_id=event.id, kind="message", event_type="open")]
            ),
        )
        for event in claimed
    ]
    owned = await commit_processed(ctx, items)

    assert owned == {ids[0]}
    async with app.state.services.session_factory() as s:
        written = (await s.scalars(select(Delivery.event_id))).all()
        statuses = dict((await s.execute(select(WebhookEvent.id, WebhookEvent.status))).all())
    assert written == [ids[0]]
    assert statuses == {ids[0]: "processed", ids[1]: "processing"}
