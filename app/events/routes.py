"""Webhook events as operators see them: the list, one event, replay, and service statistics."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.core.params import QueryTime, error_responses
from app.core.security import Scope
from app.db.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Position, build_page, decode_cursor
from app.deps import HintsDep, SessionDep
from app.events.errors import EventNotFound
from app.events.replay import requeue_event
from app.events.schemas import EventDetail, EventOut, EventPage, Stats, parse_payload
from app.events.stats import service_stats
from app.processing.inbox import EventRepository
from app.processing.models import EventKind, EventStatus
from app.users.deps import require_scopes

router = APIRouter(tags=["events"])

READ = [require_scopes(Scope.EVENTS_READ)]


@router.get(
    "/events",
    response_model=EventPage,
    dependencies=READ,
    responses=error_responses(401, 403, 422, 500, extra={400: "`invalid_cursor`"}),
    summary="List webhook events, newest first",
    description="Keyset pagination as for emails. `received_after` is inclusive.",
)
async def list_events(
    session: SessionDep,
    status: EventStatus | None = None,
    kind: EventKind | None = None,
    received_after: QueryTime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> EventPage:
    after = decode_cursor("events", cursor) if cursor else None
    rows = await EventRepository(session).page(
        status=status.value if status else None,
        kind=kind.value if kind else None,
        received_after=received_after,
        after=(after.received_at, after.id) if after else None,
        limit=limit + 1,
    )
    page = build_page(
        "events", rows, limit=limit, position_of=lambda e: Position(e.received_at, e.id)
    )
    return EventPage(items=[EventOut.of(e) for e in page.items], next_cursor=page.next_cursor)


@router.get(
    "/events/{event_id}",
    response_model=EventDetail,
    dependencies=READ,
    responses=error_responses(401, 403, 404, 422, 500),
    summary="One event: status, attempts, last error, timestamps and optionally its payload",
)
async def get_event(
    event_id: uuid.UUID,
    session: SessionDep,
    include_payload: Annotated[
        bool, Query(description="Include the event as received (may be megabytes)")
    ] = False,
) -> EventDetail:
    events = EventRepository(session)
    event = await events.get_without_payload(event_id)
    if event is None:
        raise EventNotFound()
    payload = parse_payload(await events.get_payload(event_id)) if include_payload else None
    return EventDetail.with_payload(event, payload)


@router.post(
    "/events/{event_id}/replay",
    response_model=EventOut,
    status_code=202,
    dependencies=[require_scopes(Scope.EVENTS_REPLAY)],
    responses=error_responses(
        401,
        403,
        404,
        422,
        500,
        extra={
            409: "`event_in_progress` (received or processing), `event_not_replayable` "
            "(ignored) or `payload_purged`"
        },
    ),
    summary="Process a failed or processed event again",
    description=(
        "Puts the event back to `received` with its attempts reset and hands it to the worker. "
        "Processing is idempotent: a replayed inbound email replaces the earlier copy."
    ),
)
async def replay_event(event_id: uuid.UUID, session: SessionDep, hints: HintsDep) -> EventOut:
    event = await requeue_event(session, event_id)
    hints.submit([event.id])
    return EventOut.of(event)


@router.get(
    "/stats",
    response_model=Stats,
    dependencies=READ,
    responses=error_responses(401, 403, 500),
    summary="Counts of events, emails and attachments, and the age of the backlog",
)
async def get_stats(session: SessionDep) -> Stats:
    return await service_stats(session)
