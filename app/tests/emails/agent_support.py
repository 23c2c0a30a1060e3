"""Posting messages as signed Mandrill inbound events and reading the emails back."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from app.processing.models import WebhookEvent
from app.tests.support import inbound_event, post_events, wait_until

EMAILS = "/api/v1/emails"
NO_EVIDENCE: dict[str, Any] = {"dkim": {"signed": False, "valid": False}, "spf": None}


def as_message(message: EmailMessage | bytes) -> EmailMessage:
    if isinstance(message, bytes):
        parsed = email.message_from_bytes(message, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed
    return message


async def _settled(app: FastAPI) -> int:
    async with app.state.services.session_factory() as session:
        stmt = select(func.count()).where(
            WebhookEvent.status.in_(("processed", "failed", "ignored"))
        )
        return int(await session.scalar(stmt) or 0)


async def deliver(
    client: httpx.AsyncClient,
    app: FastAPI,
    messages: list[EmailMessage | bytes],
    **msg_fields: Any,
) -> None:
    """Post the messages in one signed batch and wait until all are processed."""
    before = await _settled(app)
    fields = NO_EVIDENCE | msg_fields
    events = [inbound_event(as_message(m), **fields) for m in messages]
    response = await post_events(client, events)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(messages)

    async def done() -> bool:
        return await _settled(app) >= before + len(messages)

    await wait_until(done)


async def by_message_id(
    client: httpx.AsyncClient, headers: dict[str, str], message_id: str
) -> dict[str, Any]:
    """The email's detail, found through the list (every page)."""
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(EMAILS, params=params, headers=headers)).json()
        for item in page["items"]:
            if item["message_id"] == message_id:
                detail = await client.get(f"{EMAILS}/{item['id']}", headers=headers)
                assert detail.status_code == 200
                body: dict[str, Any] = detail.json()
                return body
        cursor = page["next_cursor"]
        assert cursor is not None, f"no email with Message-ID {message_id}"
