"""Through the real webhook path: receive, process, list, download, replay."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from typing import Any

import httpx

from app.tests.fixtures.api import TokenFor
from app.tests.support import build_message, inbound_event, post_events, wait_until

API = "/api/v1"


async def _get(client: httpx.AsyncClient, path: str, headers: dict[str, str], **params: Any) -> Any:
    response = await client.get(f"{API}{path}", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_inbound_email_from_webhook_to_download_and_replay(
    client: httpx.AsyncClient, token_for: TokenFor
) -> None:
    headers = await token_for("emails:read", "events:read", "events:replay")
    pdf = os.urandom(120_000)
    message = build_message(
        subject="Quarterly report", attachments=[("Q3 report.pdf", "application/pdf", pdf)]
    )
    response = await post_events(client, [inbound_event(message)])
    assert response.json() == {"accepted": 1, "duplicates": 0}

    async def has_email() -> bool:
        return bool((await _get(client, "/emails", headers))["items"])

    await wait_until(has_email)
    [item] = (await _get(client, "/emails", headers, subject="quarterly"))["items"]
    assert item["attachment_count"] == 1
    assert item["from"]["email"] == "alice@example.org"
    detail = await _get(client, f"/emails/{item['id']}", headers)
    [attachment] = detail["attachments"]
    assert attachment["filename"] == "Q3 report.pdf"

    download = await client.get(attachment["content_url"], headers=headers)
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == hashlib.sha256(pdf).hexdigest()
    assert download.headers["content-type"] == "application/pdf"

    raw = await client.get(f"{API}/emails/{item['id']}/raw", headers=headers)
    assert raw.status_code == 200
    assert raw.content == message.as_bytes()

    # Replaying the processed event rebuilds the email: a new row, never a second copy.
    [event] = (await _get(client, "/events", headers, kind="inbound"))["items"]
    assert event["status"] == "processed"
    replay = await client.post(f"{API}/events/{event['id']}/replay", headers=headers)
    assert replay.status_code == 202

    async def rebuilt() -> bool:
        state = await _get(client, f"/events/{event['id']}", headers)
        emails = (await _get(client, "/emails", headers))["items"]
        # Rebuilt in place: the same id (consumers keep their references), not a new email.
        return state["status"] == "processed" and bool(emails) and emails[0]["id"] == item["id"]

    await wait_until(rebuilt)
    emails = (await _get(client, "/emails", headers))["items"]
    assert len(emails) == 1
    [again] = (await _get(client, f"/emails/{emails[0]['id']}", headers))["attachments"]
    assert again["sha256"] == attachment["sha256"]
    assert (await client.get(again["content_url"], headers=headers)).content == pdf


async def test_failed_event_replays_and_fails_again(
    client: httpx.AsyncClient, token_for: TokenFor
) -> None:
    headers = await token_for("events:read", "events:replay")
    assert (await post_events(client, ["not an object"])).json()["accepted"] == 1

    async def failed_event() -> dict[str, Any] | None:
        items = (await _get(client, "/events", headers, status="failed"))["items"]
        return items[0] if items else None

    async def is_failed() -> bool:
        return await failed_event() is not None

    await wait_until(is_failed)
    first = await failed_event()
    assert first is not None
    assert first["kind"] == "invalid"
    assert first["attempts"] == 1
    assert "not a recognisable Mandrill event" in first["last_error"]

    replay = await client.post(f"{API}/events/{first['id']}/replay", headers=headers)
    assert replay.status_code == 202
    assert replay.json()["attempts"] == 0
    assert replay.json()["failed_at"] is None

    async def failed_again() -> bool:
        state = await _get(client, f"/events/{first['id']}", headers)
        return state["status"] == "failed" and state["failed_at"] is not None

    await wait_until(failed_again)
    state = await _get(client, f"/events/{first['id']}", headers, include_payload="true")
    assert state["attempts"] == 1
    assert datetime.fromisoformat(state["failed_at"]) > datetime.fromisoformat(first["failed_at"])
    assert state["payload"] == "not an object"
