"""GET /api/v1/audience-events: scope, filters and keyset pagination over received events."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audience.models import AudienceEvent
from app.core.config import Settings
from app.tests.audience.support import (
    CAMPAIGN,
    CLEANED,
    PROFILE,
    SUBSCRIBE,
    UNSUBSCRIBE,
    UPEMAIL,
    bearer,
    post_audience,
    replace,
    settled_statuses,
)

LIST_PATH = "/api/v1/audience-events"
ALL = [SUBSCRIBE, UNSUBSCRIBE, PROFILE, UPEMAIL, CLEANED, CAMPAIGN]


@pytest.fixture
async def received(app: FastAPI, client: httpx.AsyncClient) -> list[AudienceEvent]:
    """The six sample events plus one on another list, processed; newest first."""
    for pairs in [*ALL, replace(SUBSCRIBE, **{"data[list_id]": "0000000000"})]:
        assert (await post_audience(client, pairs)).json()["accepted"] == 1
    assert await settled_statuses(app, len(ALL) + 1) == {"processed": len(ALL) + 1}
    async with app.state.services.session_factory() as s:
        rows = await s.scalars(
            select(AudienceEvent).order_by(AudienceEvent.created_at.desc(), AudienceEvent.id.desc())
        )
        return list(rows.all())


@pytest.fixture
async def reader(session: AsyncSession, settings: Settings) -> dict[str, str]:
    return await bearer(session, settings, "events:read")


async def test_needs_a_token_with_events_read(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    anonymous = await client.get(LIST_PATH)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "not_authenticated"
    other = await bearer(session, settings, "emails:read")
    denied = await client.get(LIST_PATH, headers=other)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "permission_denied"


async def test_lists_newest_first_with_every_field(
    client: httpx.AsyncClient, received: list[AudienceEvent], reader: dict[str, str]
) -> None:
    response = await client.get(LIST_PATH, headers=reader)
    assert response.status_code == 200
    body = response.json()
    assert body["next_cursor"] is None
    assert [item["id"] for item in body["items"]] == [str(row.id) for row in received]
    upemail = next(item for item in body["items"] if item["type"] == "upemail")
    assert upemail["email"] == "api+new@mailchimp.com"
    assert upemail["data"]["old_email"] == "api+old@mailchimp.com"
    assert upemail["fired_at_raw"] == "2009-03-26 22:15:09"
    assert upemail["fired_at"].startswith("2009-03-26T22:15:09")
    assert upemail["event_id"]
    campaign = next(item for item in body["items"] if item["type"] == "campaign")
    assert (campaign["campaign_id"], campaign["email"]) == ("5aa2102003", None)
    assert campaign["data"]["subject"] == "Test Campaign Subject"


async def test_filters(
    client: httpx.AsyncClient, received: list[AudienceEvent], reader: dict[str, str]
) -> None:
    async def types(**params: str) -> list[str]:
        response = await client.get(LIST_PATH, params=params, headers=reader)
        assert response.status_code == 200, response.text
        return sorted(item["type"] for item in response.json()["items"])

    assert await types(type="subscribe") == ["subscribe", "subscribe"]
    assert await types(type="cleaned") == ["cleaned"]
    assert await types(email="API@MailChimp.com") == ["profile", "subscribe", "subscribe"]
    assert await types(email="api+new@mailchimp.com") == ["upemail"]
    assert await types(list_id="0000000000") == ["subscribe"]
    assert await types(list_id="0000000000", type="profile") == []
    # Exclusive: 21:35:57 itself is not after 21:35:57.
    assert await types(fired_after="2009-03-26T21:35:57Z") == [
        "cleaned",
        "unsubscribe",
        "upemail",
    ]
    assert await types(fired_after="2009-03-26T21:35:57") == await types(
        fired_after="2009-03-26T22:35:57+01:00"
    )


async def test_cursor_pages_cover_everything_once(
    client: httpx.AsyncClient, received: list[AudienceEvent], reader: dict[str, str]
) -> None:
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        response = await client.get(LIST_PATH, params=params, headers=reader)
        assert response.status_code == 200
        body = response.json()
        assert len(body["items"]) <= 3
        seen.extend(item["id"] for item in body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [str(row.id) for row in received]


async def test_filtered_pages_keep_the_filter(
    client: httpx.AsyncClient, received: list[AudienceEvent], reader: dict[str, str]
) -> None:
    first = (
        await client.get(LIST_PATH, params={"type": "subscribe", "limit": "1"}, headers=reader)
    ).json()
    assert first["next_cursor"]
    second = (
        await client.get(
            LIST_PATH,
            params={"type": "subscribe", "limit": "1", "cursor": first["next_cursor"]},
            headers=reader,
        )
    ).json()
    assert second["next_cursor"] is None
    assert {first["items"][0]["type"], second["items"][0]["type"]} == {"subscribe"}
    assert first["items"][0]["id"] != second["items"][0]["id"]


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"cursor": "not-a-cursor"}, 400, "invalid_cursor"),
        ({"limit": "0"}, 422, "validation_error"),
        ({"limit": "201"}, 422, "validation_error"),
        ({"fired_after": "soon"}, 422, "validation_error"),
        # PostgreSQL refuses NUL in text; it must be a 422, never a 500.
        ({"email": "a\x00b@example.com"}, 422, "validation_error"),
        ({"type": "sub\x00scribe"}, 422, "validation_error"),
    ],
)
async def test_bad_parameters(
    client: httpx.AsyncClient,
    reader: dict[str, str],
    params: dict[str, str],
    status: int,
    code: str,
) -> None:
    response = await client.get(LIST_PATH, params=params, headers=reader)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


async def test_empty_list(client: httpx.AsyncClient, reader: dict[str, str]) -> None:
    response = await client.get(LIST_PATH, params={"limit": "200"}, headers=reader)
    assert response.json() == {"items": [], "next_cursor": None}
