"""The inbox page: received emails, newest first, searchable, in keyset pages."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import Query, Request
from starlette.responses import Response

from app.console.deps import EmailsReader
from app.console.pages import render
from app.console.routing import console_router
from app.db.paging import InvalidCursor, Position, build_page, decode_cursor
from app.deps import SessionDep
from app.emails.models import Email
from app.emails.repository import EmailFilters, EmailRepository
from app.processing.inbox import EventRepository

router = console_router()

PAGE_SIZE = 50
# The category filter appears once emails are classified (a `category` column and filter).
HAS_CATEGORY = hasattr(Email, "category") and "category" in {
    field.name for field in dataclasses.fields(EmailFilters)
}
Text = Annotated[str, Query(max_length=998)]


def _day(value: str, label: str, problems: list[str]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        problems.append(f"{label} must be a date like 2026-12-01")
        return None


def _start_of(day: date | None, *, plus_days: int = 0) -> datetime | None:
    if day is None:
        return None
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=plus_days)


@router.get("/emails")
async def inbox(
    request: Request,
    viewer: EmailsReader,
    session: SessionDep,
    from_: Annotated[str, Query(alias="from", max_length=998)] = "",
    to: Text = "",
    subject: Text = "",
    received_from: Annotated[str, Query(max_length=10)] = "",
    received_to: Annotated[str, Query(max_length=10)] = "",
    attachments: Annotated[str, Query(pattern="^(|yes|no)$")] = "",
    category: Annotated[str, Query(max_length=64)] = "",
    cursor: Annotated[str, Query(max_length=256)] = "",
    deleted: bool = False,
) -> Response:
    problems: list[str] = []
    first_day = _day(received_from, "“Received from”", problems)
    last_day = _day(received_to, "“Received to”", problems)
    terms: dict[str, Any] = {
        "from_contains": from_.replace("\x00", "") or None,
        "to_contains": to.replace("\x00", "") or None,
        "subject_contains": subject.replace("\x00", "") or None,
        "received_after": _start_of(first_day),
        # The last day is included: up to the start of the day after it.
        "received_before": _start_of(last_day, plus_days=1),
        "has_attachments": {"yes": True, "no": False}.get(attachments),
    }
    if HAS_CATEGORY and category:
        terms["category"] = category
    after = None
    if cursor:
        try:
            after = decode_cursor("emails", cursor)
        except InvalidCursor:
            problems.append("the page link is not valid any more; this is the first page")
    rows = await EmailRepository(session).page(
        EmailFilters(**terms),
        after=(after.received_at, after.id) if after else None,
        limit=PAGE_SIZE + 1,
    )
    page = build_page(
        "emails",
        rows,
        limit=PAGE_SIZE,
        position_of=lambda row: Position(row[0].received_at, row[0].id),
    )
    event_ids = [email.event_id for email, *_ in page.items if email.event_id is not None]
    statuses = await EventRepository(session).statuses(event_ids)
    query = {
        "from": from_,
        "to": to,
        "subject": subject,
        "received_from": received_from,
        "received_to": received_to,
        "attachments": attachments,
        "category": category,
    }
    return render(
        request,
        "inbox.html",
        {
            "rows": [
                (email, count, statuses.get(email.event_id) if email.event_id else None)
                for email, count, _thread in page.items
            ],
            "query": query,
            "filtered": any(query.values()),
            "next_query": {k: v for k, v in query.items() if v} | {"cursor": page.next_cursor}
            if page.next_cursor
            else None,
            "has_category": HAS_CATEGORY,
            "problems": problems,
            "deleted": deleted,
            "paged": bool(cursor),
            "first_query": {k: v for k, v in query.items() if v},
        },
    )
