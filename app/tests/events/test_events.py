"""Events, replay, deliveries and stats (the worker is off here: rows stay as written)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.tests.emails.factories import add_delivery, add_email, add_event
from app.tests.fixtures.api import TokenFor

EVENTS = "/api/v1/events"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"processing_enabled": False}


@pytest.fixture
async def reader(token_for: TokenFor) -> dict[str, str]:
    return await token_for("events:read")


@pytest.fixture
async def replayer(token_for: TokenFor) -> dict[str, str]:
    return await token_for("events:read", "events:replay")


async def test_list_filters_and_pages(
    client: httpx.AsyncClient, reader: dict[str, str], session: AsyncSession
) -> None:
    failed = await add_event(session, status="failed", kind="inbound", received_at=T0)
    processed = await add_event(
        session, status="processed", kind="message", event_type="open", received_at=T0
    )
    ignored = await add_event(
        session, status="ignored", kind="message", received_at=T0 + timedelta(hours=1)
    )

    async def ids(**params: str) -> list[str]:
        response = await client.get(EVENTS, headers=reader, params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    same_time = sorted([failed.id, processed.id], reverse=True)
    assert await ids() == [str(ignored.id), *map(str, same_time)]
    assert await ids(status="failed") == [str(failed.id)]
    assert await ids(kind="message") == [str(ignored.id), str(processed.id)]
    assert await ids(kind="message", status="processed") == [str(processed.id)]
    assert await ids(received_after="2026-11-20T12:30:00Z") == [str(ignored.id)]

    first = (await client.get(EVENTS, headers=reader, params={"limit": 2})).json()
    assert len(first["items"]) == 2
    second = await client.get(
        EVENTS, headers=reader, params={"limit": 2, "cursor": first["next_cursor"]}
    )
    assert [i["id"] for i in second.json()["items"]] == [str(same_time[1])]
    assert second.json()["next_cursor"] is None
    item = first["items"][0]
    assert item["status"] == "ignored"
    assert "payload" not in item


async def test_list_validation(client: httpx.AsyncClient, reader: dict[str, str]) -> None:
    assert (await client.get(EVENTS, headers=reader, params={"status": "nope"})).status_code == 422
    assert (await client.get(EVENTS, headers=reader, params={"kind": "nope"})).status_code == 422
    bad = await client.get(EVENTS, headers=reader, params={"cursor": "nonsense"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_cursor"


async def test_detail_with_and_without_payload(
    client: httpx.AsyncClient, reader: dict[str, str], session: AsyncSession
) -> None:
    payload = {"event": "inbound", "msg": {"subject": "Hi ☃"}}
    event = await add_event(
        session, status="failed", payload=payload, attempts=8, last_error="boom"
    )
    response = await client.get(f"{EVENTS}/{event.id}", headers=reader)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "failed"
    assert body["attempts"] == 8
    assert body["last_error"] == "boom"
    assert body["payload"] is None
    assert body["payload_purged"] is False
    full = await client.get(
        f"{EVENTS}/{event.id}", headers=reader, params={"include_payload": "true"}
    )
    assert full.json()["payload"] == payload


async def test_unknown_event_is_404(client: httpx.AsyncClient, replayer: dict[str, str]) -> None:
    for response in (
        await client.get(f"{EVENTS}/{uuid.uuid4()}", headers=replayer),
        await client.post(f"{EVENTS}/{uuid.uuid4()}/replay", headers=replayer),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "event_not_found"


@pytest.mark.parametrize("status", ["failed", "processed"])
async def test_replay_requeues(
    client: httpx.AsyncClient, replayer: dict[str, str], session: AsyncSession, status: str
) -> None:
    event = await add_event(
        session,
        status=status,
        payload={"event": "inbound"},
        attempts=8,
        last_error="boom",
        failed_at=utcnow() if status == "failed" else None,
        next_attempt_at=utcnow() + timedelta(days=1),
    )
    response = await client.post(f"{EVENTS}/{event.id}/replay", headers=replayer)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["id"] == str(event.id)
    assert body["status"] == "received"
    assert body["attempts"] == 0
    assert body["failed_at"] is None
    assert datetime.fromisoformat(body["next_attempt_at"]) <= utcnow()
    again = await client.get(f"{EVENTS}/{event.id}", headers=replayer)
    assert again.json()["status"] == "received"


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("received", "event_in_progress"),
        ("processing", "event_in_progress"),
        ("ignored", "event_not_replayable"),
    ],
)
async def test_replay_refused_by_status(
    client: httpx.AsyncClient,
    replayer: dict[str, str],
    session: AsyncSession,
    status: str,
    code: str,
) -> None:
    event = await add_event(session, status=status, payload={"event": "x"})
    response = await client.post(f"{EVENTS}/{event.id}/replay", headers=replayer)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == code


async def test_replay_of_a_purged_event_is_409(
    client: httpx.AsyncClient, replayer: dict[str, str], session: AsyncSession
) -> None:
    event = await add_event(session, status="processed", payload=None, payload_purged_at=utcnow())
    response = await client.post(f"{EVENTS}/{event.id}/replay", headers=replayer)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "payload_purged"
    detail = await client.get(f"{EVENTS}/{event.id}", headers=replayer)
    assert detail.json()["payload_purged"] is True
    assert detail.json()["status"] == "processed"


async def test_deliveries_for_a_message(
    client: httpx.AsyncClient, reader: dict[str, str], session: AsyncSession
) -> None:
    mid = uuid.uuid4().hex
    opened = await add_delivery(
        session, event_type="open", message_id=mid, occurred_at=T0 + timedelta(minutes=5)
    )
    sent = await add_delivery(session, event_type="send", message_id=mid, occurred_at=T0)
    undated = await add_delivery(session, event_type="click", message_id=mid, occurred_at=None)
    denied = await add_delivery(
        session,
        kind="sync",
        event_type="blacklist",
        recipient="bob@example.org",
        occurred_at=T0 + timedelta(minutes=1),
    )
    await add_delivery(session, event_type="open", message_id="other", occurred_at=T0)
    await add_delivery(session, kind="sync", event_type="blacklist", recipient="eve@example.org")

    response = await client.get("/api/v1/deliveries", headers=reader, params={"message_id": mid})
    assert response.status_code == 200
    body = response.json()
    assert body["message_id"] == mid
    assert [d["id"] for d in body["items"]] == [
        str(sent.id),
        str(denied.id),
        str(opened.id),
        str(undated.id),
    ]
    assert body["items"][0]["details"] == {"event": "send"}

    none = await client.get("/api/v1/deliveries", headers=reader, params={"message_id": "x"})
    assert none.json()["items"] == []
    assert (await client.get("/api/v1/deliveries", headers=reader)).status_code == 422
    nul = await client.get("/api/v1/deliveries", headers=reader, params={"message_id": "a\x00"})
    assert nul.status_code == 422


async def test_stats(
    client: httpx.AsyncClient, reader: dict[str, str], session: AsyncSession
) -> None:
    empty = (await client.get("/api/v1/stats", headers=reader)).json()
    assert empty["events"]["unprocessed"] == 0
    assert empty["events"]["oldest_unprocessed_age_seconds"] is None
    assert empty["events"]["by_status"] == dict.fromkeys(
        ["received", "processing", "processed", "failed", "ignored"], 0
    )
    assert empty["emails"] == empty["attachments"] == empty["attachment_bytes"] == 0

    await add_event(session, status="received", received_at=utcnow() - timedelta(minutes=10))
    await add_event(session, status="processing", kind="message")
    await add_event(session, status="processed")
    await add_event(session, status="failed")
    await add_email(session, attachments=[("a", "text/plain", b"12345"), ("b", "text/plain", b"1")])
    await add_email(session)

    stats = (await client.get("/api/v1/stats", headers=reader)).json()
    events = stats["events"]
    assert events["by_status"] == {
        "received": 1,
        "processing": 1,
        "processed": 1,
        "failed": 1,
        "ignored": 0,
    }
    assert events["by_kind"]["inbound"] == 3
    assert events["by_kind"]["message"] == 1
    assert events["by_kind_and_status"]["inbound"] == {"received": 1, "processed": 1, "failed": 1}
    assert events["unprocessed"] == 2
    assert 590 <= events["oldest_unprocessed_age_seconds"] <= 700
    assert stats["emails"] == 2
    assert stats["attachments"] == 2
    assert stats["attachment_bytes"] == 6
