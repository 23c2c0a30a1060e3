"""Dedupe keys merge true repeats only: a retried batch is one, a distinct event is never dropped.

Each case posts through the signed webhook (or the audience URL) and checks what was stored and
processed, on whichever database the suite runs on.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audience.models import AudienceEvent
from app.core.config import Settings
from app.deliveries.models import Delivery
from app.emails.models import Email
from app.mail.parser import extract_message_id
from app.processing.models import EventKind, WebhookEvent
from app.tests.audience.support import PROFILE, bearer, post_audience, replace
from app.tests.mandrill.test_inbound_webhook import count, wait_settled
from app.tests.support import build_message, inbound_event, message_event, post_events


def to_address(address: str, event: dict[str, Any]) -> dict[str, Any]:
    """The inbound event Mandrill posts for one receiving address of the same message."""
    return {**event, "msg": {**event["msg"], "email": address}}


async def test_one_message_to_two_addresses_is_two_emails(
    client: httpx.AsyncClient, app: FastAPI, session: AsyncSession, settings: Settings
) -> None:
    message = build_message(to="sales@kave.example.com, support@kave.example.com")
    event = inbound_event(message)
    batch = [
        to_address("sales@kave.example.com", event),
        to_address("support@kave.example.com", event),
    ]
    first = await post_events(client, batch)
    assert first.json() == {"accepted": 2, "duplicates": 0}
    again = await post_events(client, batch)  # Mailchimp retries the whole batch
    assert again.json() == {"accepted": 0, "duplicates": 2}
    one_more = await post_events(client, batch[1:])  # or a part of it
    assert one_more.json() == {"accepted": 0, "duplicates": 1}

    assert await wait_settled(app, 2) == {"processed": 2}
    async with app.state.services.session_factory() as s:
        emails = (await s.scalars(select(Email).order_by(Email.envelope_recipient))).all()
    assert [e.envelope_recipient for e in emails] == [
        "sales@kave.example.com",
        "support@kave.example.com",
    ]
    assert emails[0].message_id == emails[1].message_id
    # The raw message is one blob, shared by both emails.
    assert emails[0].raw_blob_key == emails[1].raw_blob_key is not None

    headers = await bearer(session, settings, "emails:read")
    for mailbox in ("sales@", "support@"):
        page = await client.get("/api/v1/emails", params={"to": mailbox}, headers=headers)
        # Both addresses are in To, so each search finds both; the envelope tells them apart.
        recipients = {item["envelope_recipient"] for item in page.json()["items"]}
        assert recipients == {"sales@kave.example.com", "support@kave.example.com"}


async def test_a_bcc_recipient_is_listed_by_its_envelope_address(
    client: httpx.AsyncClient, app: FastAPI, session: AsyncSession, settings: Settings
) -> None:
    event = inbound_event(build_message(to="sales@kave.example.com"))
    batch = [
        to_address("sales@kave.example.com", event),
        to_address("audit@kave.example.com", event),
    ]
    assert (await post_events(client, batch)).json() == {"accepted": 2, "duplicates": 0}
    assert await wait_settled(app, 2) == {"processed": 2}
    headers = await bearer(session, settings, "emails:read")
    page = await client.get("/api/v1/emails", params={"to": "audit@"}, headers=headers)
    assert [item["envelope_recipient"] for item in page.json()["items"]] == [
        "audit@kave.example.com"
    ]


async def test_receiving_address_case_is_one_recipient(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    event = inbound_event()
    upper = to_address("Inbox@Kave.Example.com", event)
    assert (await post_events(client, [event])).json() == {"accepted": 1, "duplicates": 0}
    assert (await post_events(client, [upper])).json() == {"accepted": 0, "duplicates": 1}


def click(url: str, *, message_id: str, ts: int, clicks: int = 0) -> dict[str, Any]:
    event = message_event("click", message_id=message_id, ts=ts)
    event.update(url=url, ip="203.0.113.9", user_agent="Mozilla/5.0", location={"city": "Oslo"})
    event["msg"]["clicks"] = [{"ts": ts, "url": url}] * clicks
    return event


async def test_two_clicks_in_one_second_are_two_events(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    a = click("https://example.org/a", message_id="m1", ts=1_700_000_000)
    b = click("https://example.org/b", message_id="m1", ts=1_700_000_000)
    assert (await post_events(client, [a, b])).json() == {"accepted": 2, "duplicates": 0}
    # A retry carries the message's state as it is now: more clicks, opens, smtp events.
    retried = [
        click("https://example.org/a", message_id="m1", ts=1_700_000_000, clicks=2),
        click("https://example.org/b", message_id="m1", ts=1_700_000_000, clicks=2),
    ]
    for event in retried:
        event["msg"]["opens"] = [{"ts": 1_700_000_100}]
        event["msg"]["state"] = "sent"
    assert (await post_events(client, retried)).json() == {"accepted": 0, "duplicates": 2}

    assert await wait_settled(app, 2) == {"processed": 2}
    async with app.state.services.session_factory() as s:
        urls = (await s.scalars(select(Delivery.url).order_by(Delivery.url))).all()
    assert urls == ["https://example.org/a", "https://example.org/b"]


async def test_message_events_differ_by_their_own_fields(client: httpx.AsyncClient) -> None:
    base = click("https://example.org/a", message_id="m2", ts=1_700_000_000)
    variants = [
        {**base, "ip": "198.51.100.1"},
        {**base, "user_agent": "curl/8"},
        {**base, "location": {"city": "Bergen"}},
        {**base, "ts": 1_700_000_001},
        {**base, "event": "open"},
        {**base, "_id": "m3"},
    ]
    response = await post_events(client, [base, *variants])
    assert response.json() == {"accepted": 7, "duplicates": 0}
    # Key order is not what makes an event: the same fields in another order are a repeat.
    reordered = dict(reversed(list(base.items())))
    assert (await post_events(client, [reordered])).json() == {"accepted": 0, "duplicates": 1}


async def test_two_bounces_with_different_reasons_are_kept(client: httpx.AsyncClient) -> None:
    def bounce(diag: str) -> dict[str, Any]:
        event = message_event("soft_bounce", message_id="m4", ts=1_700_000_000)
        event["msg"].update(diag=diag, bounce_description="mailbox_full")
        return event

    first = await post_events(client, [bounce("452 4.2.2 full"), bounce("421 4.7.0 later")])
    assert first.json() == {"accepted": 2, "duplicates": 0}
    again = bounce("452 4.2.2 full")
    again["msg"]["smtp_events"] = [{"ts": 1_700_000_050, "type": "deferred"}]
    assert (await post_events(client, [again])).json() == {"accepted": 0, "duplicates": 1}


async def test_two_profile_updates_in_one_second_are_two_events(
    client: httpx.AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    renamed = replace(PROFILE, **{"data[merges][FNAME]": "Renamed"})
    assert (await post_audience(client, PROFILE)).json() == {"accepted": 1, "duplicates": 0}
    assert (await post_audience(client, renamed)).json() == {"accepted": 1, "duplicates": 0}
    # Identical redeliveries, also with the fields in another order, are one event each.
    assert (await post_audience(client, PROFILE)).json() == {"accepted": 0, "duplicates": 1}
    shuffled = list(reversed(renamed))
    assert (await post_audience(client, shuffled)).json() == {"accepted": 0, "duplicates": 1}

    await wait_settled(app, 2)
    async with app.state.services.session_factory() as s:
        names = (await s.scalars(select(AudienceEvent.data))).all()
    assert sorted(d["merges"]["FNAME"] for d in names) == ["Mailchimp", "Renamed"]


async def test_the_whole_mixed_batch_again_is_all_duplicates(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    event = inbound_event()
    sync = {"type": "blacklist", "action": "add", "ts": 1, "reject": {"email": "x@example.org"}}
    batch = [
        to_address("a@kave.example.com", event),
        to_address("b@kave.example.com", event),
        click("https://example.org/a", message_id="m5", ts=5),
        click("https://example.org/b", message_id="m5", ts=5),
        message_event("open", message_id="m5", ts=5),
        sync,
        {**sync, "action": "remove"},
        "not an event",
    ]
    assert (await post_events(client, batch)).json() == {"accepted": 8, "duplicates": 0}
    assert (await post_events(client, batch)).json() == {"accepted": 0, "duplicates": 8}
    assert await wait_settled(app, 8) == {"processed": 7, "failed": 1}


def legacy_inbound_key(event: dict[str, Any]) -> str:
    """The key Kave gave an inbound event before receiving addresses counted."""

    def sha(*parts: str) -> str:
        h = hashlib.sha256()
        for part in parts:
            h.update(part.encode("utf-8", "surrogatepass"))
            h.update(b"\0")
        return h.hexdigest()

    message_id = extract_message_id(event["msg"]) or ""
    return sha("inbound", message_id, sha(event["msg"]["raw_msg"]))


async def test_a_batch_received_before_the_upgrade_and_retried_after_is_not_lost(
    client: httpx.AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    """Old rows keep their keys, new events get new ones: a retry that straddles the upgrade is
    stored a second time (processed twice, two emails), never dropped; the next retry is a
    duplicate again."""
    event = inbound_event()
    session.add(
        WebhookEvent(
            kind=EventKind.INBOUND.value,
            event_type="inbound",
            dedupe_key=legacy_inbound_key(event),
            message_key=extract_message_id(event["msg"]),
            payload=json.dumps(event),
            payload_bytes=len(json.dumps(event)),
        )
    )
    await session.commit()
    await session.close()  # SQLite has one connection: the app needs it back
    retried = await post_events(client, [event])
    assert retried.json() == {"accepted": 1, "duplicates": 0}
    assert (await post_events(client, [event])).json() == {"accepted": 0, "duplicates": 1}
    assert await wait_settled(app, 2) == {"processed": 2}
    async with app.state.services.session_factory() as s:
        assert await count(s, WebhookEvent) == 2
        assert len((await s.scalars(select(Email))).all()) == 2
