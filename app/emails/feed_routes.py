"""`GET /emails/feed`: every email once, oldest first, by the position it got at processing."""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from typing import Annotated

import orjson
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from app.core.params import error_responses
from app.core.security import Scope
from app.db.paging import MAX_CURSOR_CHARS, InvalidCursor
from app.deps import SessionDep
from app.emails.feed import NEW_MAIL, FeedRepository
from app.emails.schemas import EmailDetail
from app.emails.threads import ThreadRepository
from app.users.deps import require_scopes

router = APIRouter(tags=["emails"])

MAX_WAIT_SECONDS = 30.0
# Another process (a `kave worker`) cannot ring this process's bell: look again this often.
FEED_POLL_SECONDS = 0.5


class FeedPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [], "next_cursor": "WyJmZWVkIiw0Ml0"}]}
    )

    items: list[EmailDetail]
    next_cursor: str = Field(
        description="Pass as `after` next time; never null (an empty page returns the same one)"
    )


def encode_feed_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(["feed", position])).rstrip(b"=").decode()


def decode_feed_cursor(cursor: str) -> int:
    if len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidCursor()
    try:
        name, position = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidCursor() from None
    if name != "feed" or not isinstance(position, int) or isinstance(position, bool):
        raise InvalidCursor()
    if position < 0:
        raise InvalidCursor()
    return position


@router.get(
    "/emails/feed",
    response_model=FeedPage,
    response_model_by_alias=True,
    dependencies=[require_scopes(Scope.EMAILS_READ)],
    responses=error_responses(401, 403, 422, 500, extra={400: "`invalid_cursor`"}),
    summary="Emails in the order they became available, each once (pull consumers)",
    description=(
        "Oldest first by feed position. Start without `after`, then pass each answer's "
        "`next_cursor`. With `wait` (seconds, up to 30) an empty page is held until new mail "
        "arrives or the time is up. A replayed event whose email changed comes again, with "
        "the same id, at a new position."
    ),
)
async def email_feed(
    session: SessionDep,
    after: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_SECONDS)] = 0,
) -> FeedPage:
    position = decode_feed_cursor(after) if after else 0
    feed = FeedRepository(session)
    deadline = time.monotonic() + wait
    while True:
        emails = await feed.after(position, limit=limit)
        remaining = deadline - time.monotonic()
        if emails or remaining <= 0:
            break
        # Give the connection back while waiting: a long poll must not hold a transaction.
        await session.close()
        await NEW_MAIL.wait(min(remaining, FEED_POLL_SECONDS))
        await asyncio.sleep(0)
    attachments = await feed.attachments_of([email.id for email in emails])
    threads = await ThreadRepository(session).threads_of(email.thread_key for email in emails)
    items = [
        EmailDetail.of(email, attachments[email.id], threads.get(email.thread_key or ""))
        for email in emails
    ]
    last = emails[-1].feed_position if emails else position
    return FeedPage(items=items, next_cursor=encode_feed_cursor(int(last or position)))
