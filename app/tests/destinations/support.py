"""Shared steps of the outlet tests."""

from __future__ import annotations

from typing import Any

import httpx

from app.tests.support import build_message, inbound_event, post_events

FAST_OUTLET: dict[str, Any] = {
    "notification_retry_schedule": [0.05, 0.05, 0.05],
    "notification_poll_seconds": 0.05,
    "public_base_url": "http://kave.test",
}


async def add_destination(
    client: httpx.AsyncClient, headers: dict[str, str], url: str, recipients: str = "*"
) -> dict[str, Any]:
    answer = await client.post(
        "/api/v1/destinations",
        json={"url": url, "recipients": recipients, "description": "test"},
        headers=headers,
    )
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def send_mail(
    client: httpx.AsyncClient,
    *,
    to: str = "inbox@kave.example.com",
    subject: str = "Hello",
    attachments: list[tuple[str, str, bytes]] | None = None,
) -> None:
    message = build_message(to=to, subject=subject, attachments=attachments or [])
    event = inbound_event(message, email=to, to=[[to, None]])
    answer = await post_events(client, [event])
    assert answer.status_code == 200, answer.text
