"""The destinations pages: where processed mail goes, each destination's notifications and
their last attempts, the test ping and replay. The actions call the same service functions
as the API (`app/destinations/routes.py`); this module runs no SQL of its own."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from fastapi import Query, Request
from starlette.responses import RedirectResponse, Response

from app.console.deps import DestinationsAdmin, FormViewer, require
from app.console.pages import PREFIX, render
from app.console.routing import console_router
from app.core.security import Scope
from app.db.paging import InvalidCursor, Position, build_page, decode_cursor
from app.deps import SessionDep, SettingsDep
from app.destinations import service
from app.destinations.models import NotificationStatus
from app.destinations.repository import (
    AttemptRepository,
    DestinationRepository,
    NotificationRepository,
)

router = console_router()

PAGE_SIZE = 50
ATTEMPTS_SHOWN = 3  # per notification; the API's GET /notifications/{id} has them all


@router.get("/destinations")
async def destinations_page(
    request: Request, viewer: DestinationsAdmin, session: SessionDep
) -> Response:
    destinations = await DestinationRepository(session).list_all()
    pending = {
        destination_id: (count, oldest)
        for destination_id, count, oldest in await NotificationRepository(
            session
        ).pending_by_destination()
    }
    last_attempt = await AttemptRepository(session).last_by_destination()
    return render(
        request,
        "destinations.html",
        {"destinations": destinations, "pending": pending, "last_attempt": last_attempt},
    )


@router.get("/destinations/{destination_id}")
async def destination_page(
    request: Request,
    destination_id: uuid.UUID,
    viewer: DestinationsAdmin,
    session: SessionDep,
    # A plain string: the filter form sends "" for "any".
    status: Annotated[str, Query(max_length=16)] = "",
    cursor: Annotated[str, Query(max_length=256)] = "",
    pinged: Annotated[str, Query(max_length=8)] = "",
    replayed: bool = False,
) -> Response:
    destination = await service.get_destination(session, destination_id)
    problems = []
    if status and status not in {s.value for s in NotificationStatus}:
        problems.append(f"there is no status “{status}”")
        status = ""
    after = None
    if cursor:
        try:
            after = decode_cursor("notifications", cursor)
        except InvalidCursor:
            problems.append("the page link is not valid any more; this is the first page")
    rows = await NotificationRepository(session).page(
        destination_id,
        status=status or None,
        after=(after.received_at, after.id) if after else None,
        limit=PAGE_SIZE + 1,
    )
    page = build_page(
        "notifications", rows, limit=PAGE_SIZE, position_of=lambda n: Position(n.created_at, n.id)
    )
    attempts = await AttemptRepository(session).recent_for_notifications(
        [n.id for n in page.items], per_notification=ATTEMPTS_SHOWN
    )
    query = {"status": status} if status else {}
    return render(
        request,
        "destination.html",
        {
            "destination": destination,
            "notifications": page.items,
            "attempts": attempts,
            "query": query,
            "statuses": [s.value for s in NotificationStatus],
            "next_query": query | {"cursor": page.next_cursor} if page.next_cursor else None,
            "paged": bool(cursor),
            "problems": problems,
            # Only what the ping route puts there: a link cannot make the page say anything else.
            "pinged": pinged if re.fullmatch(r"[1-5]\d\d|failed", pinged) else "",
            "replayed": replayed,
        },
    )


@router.post("/destinations/{destination_id}/test")
async def send_test_ping(
    destination_id: uuid.UUID, viewer: FormViewer, session: SessionDep, settings: SettingsDep
) -> Response:
    require(viewer, Scope.DESTINATIONS_ADMIN)
    attempt = await service.send_test(session, settings, destination_id)
    # The outcome rides on the redirect: a status code, or "failed" when none came back.
    outcome = str(attempt.status_code) if attempt.status_code is not None else "failed"
    return RedirectResponse(
        f"{PREFIX}/destinations/{destination_id}?pinged={outcome}", status_code=303
    )


@router.post("/notifications/{notification_id}/replay")
async def replay_notification(
    notification_id: uuid.UUID, viewer: FormViewer, session: SessionDep
) -> Response:
    require(viewer, Scope.DESTINATIONS_ADMIN)
    notification = await service.replay_notification(session, notification_id)
    return RedirectResponse(
        f"{PREFIX}/destinations/{notification.destination_id}?replayed=true", status_code=303
    )
