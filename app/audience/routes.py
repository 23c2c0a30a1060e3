"""Management API over audience events: a filtered, keyset-paginated list (scope events:read)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.audience.schemas import AudienceEventOut, AudienceEventPage
from app.core.deps import SessionDep
from app.core.errors import ERROR_RESPONSES, ErrorEnvelope
from app.db.models import AudienceEvent
from app.db.repositories.audience import AudienceEventRepository, AudienceFilter
from app.management.deps import require_scopes
from app.management.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Position,
    build_page,
    decode_cursor,
)
from app.management.schemas import QueryText, QueryTime

router = APIRouter(prefix="/audience-events", tags=["audience events"])

CURSOR_COLLECTION = "audience-events"


def _position(row: AudienceEvent) -> Position:
    return Position(row.created_at, row.id)


@router.get(
    "",
    response_model=AudienceEventPage,
    responses={400: {"model": ErrorEnvelope, "description": "Invalid cursor"}, **ERROR_RESPONSES},
    dependencies=[require_scopes("events:read")],
    summary="List audience events, newest first",
    description=(
        "Newest first by the time Kave recorded the event (`created_at`, then `id`): "
        "`fired_at` is null when Mailchimp's value was unparseable, so it cannot order a "
        "cursor. `email` matches case-insensitively; `fired_after` is exclusive and a value "
        "without a zone is read as UTC."
    ),
)
async def list_audience_events(
    session: SessionDep,
    type: Annotated[QueryText | None, Query(max_length=64)] = None,
    email: Annotated[QueryText | None, Query(max_length=998)] = None,
    list_id: Annotated[QueryText | None, Query(max_length=64)] = None,
    fired_after: QueryTime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=256)] = None,
) -> AudienceEventPage:
    after = decode_cursor(CURSOR_COLLECTION, cursor) if cursor else None
    rows = await AudienceEventRepository(session).page(
        AudienceFilter(type=type, email=email, list_id=list_id, fired_after=fired_after),
        after=(after.received_at, after.id) if after else None,
        limit=limit + 1,
    )
    page = build_page(CURSOR_COLLECTION, rows, limit=limit, position_of=_position)
    return AudienceEventPage(
        items=[AudienceEventOut.model_validate(row) for row in page.items],
        next_cursor=page.next_cursor,
    )
