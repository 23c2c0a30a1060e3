"""The events pages: webhook events by status and kind, one event, replay (one, or all failed)."""

from __future__ import annotations

import json
import uuid
from typing import Annotated

from fastapi import Query, Request
from starlette.responses import RedirectResponse, Response

from app.console.deps import EventsReader, FormViewer, require
from app.console.pages import PREFIX, render
from app.console.routing import console_router
from app.core.security import Scope
from app.db.paging import InvalidCursor, Position, build_page, decode_cursor
from app.deps import HintsDep, SessionDep
from app.emails.repository import EmailRepository
from app.events.errors import EventNotFound
from app.events.replay import requeue_event
from app.processing.inbox import EventRepository
from app.processing.models import EventKind, EventStatus

router = console_router()

PAGE_SIZE = 50
PAYLOAD_SHOWN_CHARS = 64 * 1024


def _pretty(payload: str) -> str:
    try:
        return json.dumps(json.loads(payload), indent=2, ensure_ascii=False)
    except ValueError:
        return payload


@router.get("/events")
async def events_page(
    request: Request,
    viewer: EventsReader,
    session: SessionDep,
    # Plain strings: the filter form sends "" for "any".
    status: Annotated[str, Query(max_length=16)] = "",
    kind: Annotated[str, Query(max_length=16)] = "",
    cursor: Annotated[str, Query(max_length=256)] = "",
    requeued: int | None = None,
) -> Response:
    problems = []
    if status and status not in {s.value for s in EventStatus}:
        problems.append(f"there is no status “{status}”")
        status = ""
    if kind and kind not in {k.value for k in EventKind}:
        problems.append(f"there is no kind “{kind}”")
        kind = ""
    after = None
    if cursor:
        try:
            after = decode_cursor("events", cursor)
        except InvalidCursor:
            problems.append("the page link is not valid any more; this is the first page")
    rows = await EventRepository(session).page(
        status=status or None,
        kind=kind or None,
        received_after=None,
        after=(after.received_at, after.id) if after else None,
        limit=PAGE_SIZE + 1,
    )
    page = build_page(
        "events", rows, limit=PAGE_SIZE, position_of=lambda e: Position(e.received_at, e.id)
    )
    query = {"status": status, "kind": kind}
    return render(
        request,
        "events.html",
        {
            "events": page.items,
            "query": query,
            "statuses": [s.value for s in EventStatus],
            "kinds": [k.value for k in EventKind],
            "next_query": {k: v for k, v in query.items() if v} | {"cursor": page.next_cursor}
            if page.next_cursor
            else None,
            "problems": problems,
            "requeued": requeued,
            "paged": bool(cursor),
            "first_query": {k: v for k, v in query.items() if v},
        },
    )


async def _failed_count(session: SessionDep) -> int:
    counts = await EventRepository(session).count_by_status_and_kind()
    return sum(count for status, _, count in counts if status == EventStatus.FAILED.value)


# Declared before /events/{event_id}, which would otherwise take the path.
@router.get("/events/replay-failed")
async def confirm_replay_failed(
    request: Request, viewer: EventsReader, session: SessionDep
) -> Response:
    require(viewer, Scope.EVENTS_REPLAY)
    failed = await _failed_count(session)
    return render(
        request,
        "confirm.html",
        {
            "title": "Replay every failed event?",
            "what": f"{failed} failed event(s)",
            "consequence": "Each goes back to the queue with its attempts reset and is "
            "processed again within moments. Events whose payload was purged are skipped.",
            "action": f"{PREFIX}/events/replay-failed",
            "button": "Replay all failed events",
            "back": f"{PREFIX}/events?status=failed",
        },
    )


@router.post("/events/replay-failed")
async def replay_failed(viewer: FormViewer, session: SessionDep) -> Response:
    require(viewer, Scope.EVENTS_REPLAY)
    # The worker's recovery loop takes them up within RECOVERY_INTERVAL_SECONDS.
    # Every failed event the confirmation page counted, `invalid` ones included: the
    # operator asked for all of them (`kave replay` leaves those out unless asked).
    events = EventRepository(session)
    ids = await events.replayable_ids(
        status=EventStatus.FAILED.value,
        kind=None,
        since=None,
        skip_kinds=(),
        limit=None,
    )
    requeued = await events.requeue_many(ids, status=EventStatus.FAILED.value)
    await session.commit()
    return RedirectResponse(f"{PREFIX}/events?requeued={requeued}", status_code=303)


@router.get("/events/{event_id}")
async def event_page(
    request: Request,
    event_id: uuid.UUID,
    viewer: EventsReader,
    session: SessionDep,
    replayed: bool = False,
) -> Response:
    events = EventRepository(session)
    event = await events.get_without_payload(event_id)
    if event is None:
        raise EventNotFound()
    payload = await events.get_payload(event_id)
    email_id = (
        await EmailRepository(session).id_for_event(event_id)
        if viewer.can(Scope.EMAILS_READ)
        else None
    )
    return render(
        request,
        "event.html",
        {
            "event": event,
            "payload": _pretty(payload[:PAYLOAD_SHOWN_CHARS]) if payload else None,
            "payload_truncated": payload is not None and len(payload) > PAYLOAD_SHOWN_CHARS,
            "email_id": email_id,
            "replayed": replayed,
        },
    )


@router.post("/events/{event_id}/replay")
async def replay(
    event_id: uuid.UUID, viewer: FormViewer, session: SessionDep, hints: HintsDep
) -> Response:
    require(viewer, Scope.EVENTS_REPLAY)
    event = await requeue_event(session, event_id)
    hints.submit([event.id])
    return RedirectResponse(f"{PREFIX}/events/{event.id}?replayed=true", status_code=303)
