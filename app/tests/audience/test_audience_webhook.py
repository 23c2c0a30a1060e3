"""The audience webhook end to end: token check, store before 200, dedupe, process into rows."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audience.forms import parse_php_form
from app.audience.models import AudienceEvent
from app.main import create_app
from app.processing.inbox import EventRepository
from app.processing.models import EventKind, EventStatus, WebhookEvent
from app.tests.audience.support import (
    AUDIENCE_PATH,
    AUDIENCE_URL,
    CAMPAIGN,
    CLEANED,
    FORM_HEADERS,
    GROUPINGS,
    PROFILE,
    SUBSCRIBE,
    SUBSCRIBE_WIRE,
    TOKEN,
    UNSUBSCRIBE,
    UPEMAIL,
    count,
    form_body,
    post_audience,
    replace,
    settled_statuses,
)
from app.tests.conftest import make_settings
from app.tests.support import wait_until


async def audience_rows(app: FastAPI) -> list[AudienceEvent]:
    async with app.state.services.session_factory() as s:
        return list((await s.scalars(select(AudienceEvent))).all())


async def only_event(app: FastAPI) -> WebhookEvent:
    async with app.state.services.session_factory() as s:
        return (await s.scalars(select(WebhookEvent))).one()


def test_the_sample_bodies_are_encoded_as_mailchimp_sends_them() -> None:
    assert form_body(SUBSCRIBE) == SUBSCRIBE_WIRE


# --- the token ------------------------------------------------------------------------------


async def test_validator_get_is_200_for_the_right_token(client: httpx.AsyncClient) -> None:
    response = await client.get(
        AUDIENCE_URL, headers={"User-Agent": "MailChimp.com WebHook Validator"}
    )
    assert response.status_code == 200
    assert (await client.head(AUDIENCE_URL)).status_code == 200


@pytest.mark.parametrize(
    "token", ["wrong", TOKEN[:-1], TOKEN + "x", TOKEN.upper(), "%00", "%ED%A0%80", "%FF", "a%2Fb"]
)
async def test_wrong_token_is_a_plain_404_and_stores_nothing(
    client: httpx.AsyncClient, session: AsyncSession, token: str
) -> None:
    for response in [
        await client.get(f"{AUDIENCE_PATH}/{token}"),
        await post_audience(client, SUBSCRIBE, token=token),
        await post_audience(client, "", token=token),
        await post_audience(client, "%%%not a form", token=token),
    ]:
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        assert response.json()["error"]["request_id"]
    assert await count(session, WebhookEvent) == 0


async def test_no_token_in_the_path_is_404_never_410(client: httpx.AsyncClient) -> None:
    for method in ("GET", "POST"):
        response = await client.request(method, AUDIENCE_PATH, headers=FORM_HEADERS)
        assert response.status_code in {404, 405}
        assert response.status_code != 410


@pytest.mark.parametrize(
    "settings_overrides",
    [{"mailchimp_audience_webhook_token": None}, {"mailchimp_audience_webhook_token": ""}],
)
async def test_without_a_configured_token_everything_is_404(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    assert (await client.get(AUDIENCE_URL)).status_code == 404
    assert (await client.get(f"{AUDIENCE_PATH}/")).status_code == 404
    response = await post_audience(client, SUBSCRIBE)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert await count(session, WebhookEvent) == 0


# --- receiving ------------------------------------------------------------------------------


async def test_empty_post_is_200_and_stores_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    for body in ["", "&"]:
        response = await post_audience(client, body)
        assert response.status_code == 200
        assert response.json() == {"accepted": 0, "duplicates": 0}
    bare = await client.post(AUDIENCE_URL)
    assert bare.status_code == 200
    assert await count(session, WebhookEvent) == 0


SIX_TYPES: list[tuple[list[tuple[str, str]], dict[str, Any]]] = [
    (
        SUBSCRIBE,
        {
            "type": "subscribe",
            "fired_at_raw": "2009-03-26 21:35:57",
            "fired_at": datetime(2009, 3, 26, 21, 35, 57, tzinfo=UTC),
            "list_id": "a6b5da1054",
            "email": "api@mailchimp.com",
            "campaign_id": None,
        },
    ),
    (
        UNSUBSCRIBE,
        {
            "type": "unsubscribe",
            "list_id": "a6b5da1054",
            "email": "api+unsub@mailchimp.com",
            "campaign_id": "cb398d21d2",
        },
    ),
    (
        PROFILE,
        {"type": "profile", "list_id": "a6b5da1054", "email": "api@mailchimp.com"},
    ),
    (
        UPEMAIL,
        {
            "type": "upemail",
            "list_id": "a6b5da1054",
            "email": "api+new@mailchimp.com",
            "campaign_id": None,
        },
    ),
    (
        CLEANED,
        {
            "type": "cleaned",
            "list_id": "a6b5da1054",
            "email": "api+cleaned@mailchimp.com",
            "campaign_id": "4fjk2ma9xd",
        },
    ),
    (
        CAMPAIGN,
        {
            "type": "campaign",
            "fired_at_raw": "2009-03-26 21:31:21",
            "list_id": "a6b5da1054",
            "email": None,
            "campaign_id": "5aa2102003",
        },
    ),
]


@pytest.mark.parametrize(("pairs", "expected"), SIX_TYPES, ids=[e["type"] for _, e in SIX_TYPES])
async def test_each_type_is_stored_processed_and_deduplicated(
    app: FastAPI,
    client: httpx.AsyncClient,
    pairs: list[tuple[str, str]],
    expected: dict[str, Any],
) -> None:
    first = await post_audience(client, pairs)
    assert first.status_code == 200
    assert first.json() == {"accepted": 1, "duplicates": 0}

    # Stored before the 200: the row is there whatever the worker has done since.
    event = await only_event(app)
    assert event.kind == EventKind.AUDIENCE
    assert event.event_type == expected["type"]
    assert event.message_key == (expected.get("email") or expected.get("campaign_id"))
    stored = orjson.loads(event.payload or "")
    assert stored == parse_php_form(pairs)
    assert stored["type"] == expected["type"]
    assert stored["data"]["list_id"] == "a6b5da1054"

    assert await settled_statuses(app, 1) == {"processed": 1}
    [row] = await audience_rows(app)
    for field, value in expected.items():
        assert getattr(row, field) == value, field
    assert row.event_id == event.id
    assert row.data == stored["data"]

    again = await post_audience(client, pairs)
    assert again.status_code == 200
    assert again.json() == {"accepted": 0, "duplicates": 1}
    assert len(await audience_rows(app)) == 1


async def test_nested_fields_are_parsed(app: FastAPI, client: httpx.AsyncClient) -> None:
    assert (await post_audience(client, SUBSCRIBE_WIRE)).json()["accepted"] == 1
    assert (await post_audience(client, GROUPINGS)).json()["accepted"] == 1
    assert await settled_statuses(app, 2) == {"processed": 2}
    rows = {row.email: row for row in await audience_rows(app)}
    assert rows["api@mailchimp.com"].data["merges"] == {
        "EMAIL": "api@mailchimp.com",
        "FNAME": "Mailchimp",
        "LNAME": "API",
        "INTERESTS": "Group1,Group2",
    }
    assert rows["api@mailchimp.com"].data["ip_signup"] == "10.20.10.30"
    assert rows["groups@mailchimp.com"].data["merges"]["GROUPINGS"] == [
        {"id": "1", "name": "Interests", "groups": "A,B"},
        {"id": "2", "name": "Region", "groups": "Europe"},
    ]


async def test_upemail_keeps_the_old_address_in_data(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await post_audience(client, UPEMAIL)
    await settled_statuses(app, 1)
    [row] = await audience_rows(app)
    assert row.email == "api+new@mailchimp.com"
    assert row.data["old_email"] == "api+old@mailchimp.com"
    assert row.data["new_id"] == "51da8c3259"


async def test_distinct_events_are_not_duplicates(app: FastAPI, client: httpx.AsyncClient) -> None:
    variants = [
        SUBSCRIBE,
        replace(SUBSCRIBE, fired_at="2009-03-26 21:35:58"),
        replace(SUBSCRIBE, **{"data[email]": "other@mailchimp.com"}),
        replace(SUBSCRIBE, **{"data[list_id]": "ffffffffff"}),
        replace(SUBSCRIBE, type="profile"),
    ]
    for pairs in variants:
        assert (await post_audience(client, pairs)).json() == {"accepted": 1, "duplicates": 0}
    assert await settled_statuses(app, len(variants)) == {"processed": len(variants)}


async def test_an_unknown_type_is_stored_and_ignored(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await post_audience(client, replace(PROFILE, type="list-merged"))
    assert response.json() == {"accepted": 1, "duplicates": 0}
    assert await settled_statuses(app, 1) == {"ignored": 1}
    event = await only_event(app)
    assert event.event_type == "list-merged"
    assert "list-merged" in (event.last_error or "")
    assert await audience_rows(app) == []


async def test_unparseable_fired_at_is_kept_raw_and_null(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await post_audience(client, replace(SUBSCRIBE, fired_at="last tuesday"))
    assert await settled_statuses(app, 1) == {"processed": 1}
    [row] = await audience_rows(app)
    assert (row.fired_at_raw, row.fired_at) == ("last tuesday", None)


@pytest.mark.parametrize(
    "settings_overrides", [{"mailchimp_fired_at_timezone": "America/New_York"}]
)
async def test_fired_at_is_read_in_the_configured_zone(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await post_audience(client, SUBSCRIBE)
    await settled_statuses(app, 1)
    [row] = await audience_rows(app)
    assert row.fired_at_raw == "2009-03-26 21:35:57"
    assert row.fired_at == datetime(2009, 3, 27, 1, 35, 57, tzinfo=UTC)


def test_an_unknown_zone_is_refused_at_start_up() -> None:
    from pydantic import ValidationError

    from app.core.config import Settings

    with pytest.raises(ValidationError, match="unknown time zone 'Nowhere/Land'"):
        Settings(_env_file=None, mailchimp_fired_at_timezone="Nowhere/Land")


async def test_a_form_without_type_is_400_malformed_payload(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    for body in ["data%5Bemail%5D=a%40b.c", "type=&data%5Bemail%5D=a%40b.c", "type%5Bx%5D=1"]:
        response = await post_audience(client, body)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "malformed_payload"
    assert await count(session, WebhookEvent) == 0


async def test_too_many_fields_is_400_not_5xx(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    body = "type=profile&" + "&".join(f"data%5Bf{i}%5D=x" for i in range(1500))
    response = await post_audience(client, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_payload"
    assert await count(session, WebhookEvent) == 0


async def test_odd_bytes_and_odd_keys_are_accepted_not_5xx(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    body = form_body(SUBSCRIBE).encode() + b"&data%5Bnote%5D=caf%E9&data%5Bbroken=1&%5B%5D=2"
    response = await post_audience(client, body)
    assert response.status_code == 200
    assert await settled_statuses(app, 1) == {"processed": 1}
    [row] = await audience_rows(app)
    assert row.data["note"] == "caf\ufffd"
    event = await only_event(app)
    assert orjson.loads(event.payload or "")["data[broken"] == "1"


async def test_a_plain_data_value_fails_the_event_permanently(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await post_audience(client, [("type", "subscribe"), ("data", "not fields")])
    assert await settled_statuses(app, 1) == {"failed": 1}
    assert "data" in ((await only_event(app)).last_error or "")


async def test_multipart_bodies_are_read_too(app: FastAPI, client: httpx.AsyncClient) -> None:
    # A field without a filename is a plain form field; httpx needs `files` to send multipart.
    multipart = await client.post(AUDIENCE_URL, data=dict(CLEANED), files={"note": (None, "x")})
    assert multipart.status_code == 200
    assert multipart.json() == {"accepted": 1, "duplicates": 0}
    assert (await post_audience(client, CLEANED)).json() == {"accepted": 0, "duplicates": 1}
    await settled_statuses(app, 1)
    [row] = await audience_rows(app)
    assert (row.type, row.email, row.data["reason"]) == (
        "cleaned",
        "api+cleaned@mailchimp.com",
        "hard",
    )


async def test_a_multipart_file_is_400(client: httpx.AsyncClient, session: AsyncSession) -> None:
    response = await client.post(
        AUDIENCE_URL, data=dict(CLEANED), files={"f": ("a.txt", b"x", "text/plain")}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_payload"
    assert await count(session, WebhookEvent) == 0


async def test_replay_rewrites_the_row_instead_of_adding_one(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await post_audience(client, SUBSCRIBE)
    await settled_statuses(app, 1)
    [first] = await audience_rows(app)
    event = await only_event(app)
    async with app.state.services.session_factory() as s:
        assert await EventRepository(s).requeue(event.id)
        await s.commit()
    app.state.services.worker.submit([event.id])

    async def reprocessed() -> bool:
        e = await only_event(app)
        return e.status == EventStatus.PROCESSED and e.attempts == 1 and e.processed_at is not None

    await wait_until(reprocessed)
    await settled_statuses(app, 1)
    [second] = await audience_rows(app)
    assert second.id != first.id
    assert second.event_id == first.event_id
    assert (second.email, second.fired_at) == (first.email, first.fired_at)


async def test_database_down_is_503(tmp_path: Path) -> None:
    settings = make_settings(
        "postgresql+asyncpg://kave:kave@127.0.0.1:9/kave",  # nothing listens on port 9
        tmp_path,
        processing_enabled=False,
        db_pool_timeout=2,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://kave.test") as c:
            response = await post_audience(c, SUBSCRIBE)
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "service_unavailable"
            # The token check needs no database: a wrong token is still a 404.
            assert (await post_audience(c, SUBSCRIBE, token="nope")).status_code == 404


async def test_arbitrary_bodies_never_get_a_5xx(client: httpx.AsyncClient) -> None:
    rng = random.Random(20091126)
    alphabet = b"type=&[]%+subscribe data0123456789abcdef\xff\x00\n;"
    bodies = [bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 200))) for _ in range(150)]
    bodies += [b"type=subscribe&" + body for body in bodies[:50]]
    for body in bodies:
        response = await post_audience(client, body)
        assert response.status_code in {200, 400}, (body, response.text)
