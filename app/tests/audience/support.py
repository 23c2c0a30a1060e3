"""Mailchimp audience webhook bodies, exactly as Mailchimp sends them, and small helpers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.security import create_access_token
from app.processing.models import WebhookEvent
from app.tests.support import wait_until
from app.users.models import User

TOKEN = "audience-token-for-tests"
AUDIENCE_PATH = "/api/v1/webhooks/mailchimp/audience"
AUDIENCE_URL = f"{AUDIENCE_PATH}/{TOKEN}"
FORM_HEADERS = {
    "Content-Type": "application/x-www-form-urlencoded",
    "User-Agent": "MailChimp.com WebHook/1.0",
}

# The sample events of Mailchimp's webhook documentation, field for field and in its order.
SUBSCRIBE = [
    ("type", "subscribe"),
    ("fired_at", "2009-03-26 21:35:57"),
    ("data[id]", "8a25ff1d98"),
    ("data[list_id]", "a6b5da1054"),
    ("data[email]", "api@mailchimp.com"),
    ("data[email_type]", "html"),
    ("data[merges][EMAIL]", "api@mailchimp.com"),
    ("data[merges][FNAME]", "Mailchimp"),
    ("data[merges][LNAME]", "API"),
    ("data[merges][INTERESTS]", "Group1,Group2"),
    ("data[ip_opt]", "10.20.10.30"),
    ("data[ip_signup]", "10.20.10.30"),
]
UNSUBSCRIBE = [
    ("type", "unsubscribe"),
    ("fired_at", "2009-03-26 21:40:57"),
    ("data[action]", "unsub"),
    ("data[reason]", "manual"),
    ("data[id]", "8a25ff1d98"),
    ("data[list_id]", "a6b5da1054"),
    ("data[email]", "api+unsub@mailchimp.com"),
    ("data[email_type]", "html"),
    ("data[merges][EMAIL]", "api+unsub@mailchimp.com"),
    ("data[merges][FNAME]", "Mailchimp"),
    ("data[merges][LNAME]", "API"),
    ("data[merges][INTERESTS]", "Group1,Group2"),
    ("data[ip_opt]", "10.20.10.30"),
    ("data[campaign_id]", "cb398d21d2"),
]
PROFILE = [
    ("type", "profile"),
    ("fired_at", "2009-03-26 21:31:21"),
    ("data[id]", "8a25ff1d98"),
    ("data[list_id]", "a6b5da1054"),
    ("data[email]", "api@mailchimp.com"),
    ("data[email_type]", "html"),
    ("data[merges][EMAIL]", "api@mailchimp.com"),
    ("data[merges][FNAME]", "Mailchimp"),
    ("data[merges][LNAME]", "API"),
    ("data[merges][INTERESTS]", "Group1,Group2"),
    ("data[ip_opt]", "10.20.10.30"),
]
UPEMAIL = [
    ("type", "upemail"),
    ("fired_at", "2009-03-26 22:15:09"),
    ("data[list_id]", "a6b5da1054"),
    ("data[new_id]", "51da8c3259"),
    ("data[new_email]", "api+new@mailchimp.com"),
    ("data[old_email]", "api+old@mailchimp.com"),
]
CLEANED = [
    ("type", "cleaned"),
    ("fired_at", "2009-03-26 22:01:00"),
    ("data[list_id]", "a6b5da1054"),
    ("data[campaign_id]", "4fjk2ma9xd"),
    ("data[reason]", "hard"),
    ("data[email]", "api+cleaned@mailchimp.com"),
]
CAMPAIGN = [
    ("type", "campaign"),
    ("fired_at", "2009-03-26 21:31:21"),
    ("data[id]", "5aa2102003"),
    ("data[subject]", "Test Campaign Subject"),
    ("data[status]", "sent"),
    ("data[reason]", ""),
    ("data[list_id]", "a6b5da1054"),
]
GROUPINGS = [
    ("type", "profile"),
    ("fired_at", "2009-03-26 21:31:21"),
    ("data[id]", "8a25ff1d98"),
    ("data[list_id]", "a6b5da1054"),
    ("data[email]", "groups@mailchimp.com"),
    ("data[merges][EMAIL]", "groups@mailchimp.com"),
    ("data[merges][GROUPINGS][0][id]", "1"),
    ("data[merges][GROUPINGS][0][name]", "Interests"),
    ("data[merges][GROUPINGS][0][groups]", "A,B"),
    ("data[merges][GROUPINGS][1][id]", "2"),
    ("data[merges][GROUPINGS][1][name]", "Region"),
    ("data[merges][GROUPINGS][1][groups]", "Europe"),
]

# The subscribe body as it appears on the wire (Mailchimp's PHP http_build_query encoding).
SUBSCRIBE_WIRE = (
    "type=subscribe&fired_at=2009-03-26+21%3A35%3A57&data%5Bid%5D=8a25ff1d98"
    "&data%5Blist_id%5D=a6b5da1054&data%5Bemail%5D=api%40mailchimp.com"
    "&data%5Bemail_type%5D=html&data%5Bmerges%5D%5BEMAIL%5D=api%40mailchimp.com"
    "&data%5Bmerges%5D%5BFNAME%5D=Mailchimp&data%5Bmerges%5D%5BLNAME%5D=API"
    "&data%5Bmerges%5D%5BINTERESTS%5D=Group1%2CGroup2&data%5Bip_opt%5D=10.20.10.30"
    "&data%5Bip_signup%5D=10.20.10.30"
)


def form_body(pairs: Sequence[tuple[str, str]]) -> str:
    """`application/x-www-form-urlencoded` the way Mailchimp encodes it (`+`, `%5B`, `%40`)."""
    return urlencode(list(pairs))


def replace(pairs: Sequence[tuple[str, str]], **values: str) -> list[tuple[str, str]]:
    """The same event with some fields changed: `replace(SUBSCRIBE, **{"data[email]": "x"})`."""
    return [(key, values.get(key, value)) for key, value in pairs]


async def post_audience(
    client: httpx.AsyncClient,
    pairs: Sequence[tuple[str, str]] | str | bytes,
    *,
    token: str = TOKEN,
) -> httpx.Response:
    body = pairs if isinstance(pairs, str | bytes) else form_body(pairs)
    return await client.post(f"{AUDIENCE_PATH}/{token}", content=body, headers=FORM_HEADERS)


async def count(session: AsyncSession, model: Any, *where: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def settled_statuses(app: FastAPI, expected: int) -> dict[str, int]:
    """Wait until `expected` events reached a final status; the statuses by count."""

    async def statuses() -> dict[str, int]:
        async with app.state.services.session_factory() as s:
            rows = await s.execute(
                select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)
            )
            return {status: n for status, n in rows.all()}

    async def settled() -> bool:
        seen = await statuses()
        return sum(seen.get(s, 0) for s in ("processed", "failed", "ignored")) >= expected

    await wait_until(settled)
    return await statuses()


async def bearer(session: AsyncSession, settings: Settings, *scopes: str) -> dict[str, str]:
    """An Authorization header for a fresh active user holding `scopes`."""
    user = User(
        email=f"{uuid.uuid4().hex}@example.org", hashed_password="unused", scopes=list(scopes)
    )
    session.add(user)
    await session.commit()
    issued = create_access_token(
        user_id=user.id, scopes=scopes, secret_key=settings.secret_key, expires_minutes=5
    )
    return {"Authorization": f"Bearer {issued.access_token}"}
