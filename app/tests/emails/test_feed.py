"""The feed: each email once, oldest first by the position it got at processing; a replayed
event keeps its email's id and comes back only when the email changed."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.emails.models import Email
from app.tests.destinations.receiver import eventually
from app.tests.destinations.support import FAST_OUTLET, send_mail

FEED = "/api/v1/emails/feed"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return dict(FAST_OUTLET)


async def _read_all(
    client: httpx.AsyncClient, headers: dict[str, str], after: str | None
) -> tuple[list[dict[str, Any]], str]:
    items: list[dict[str, Any]] = []
    while True:
        params: dict[str, Any] = {"limit": 2}
        if after:
            params["after"] = after
        page = (await client.get(FEED, params=params, headers=headers)).json()
        items.extend(page["items"])
        after = page["next_cursor"]
        if not page["items"]:
            assert after
            return items, after


async def test_feed_each_email_once_in_order_including_a_changed_replay(
    client: httpx.AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    for subject in ("first", "second", "third"):
        await send_mail(client, subject=subject)

    async def stored(count: int) -> bool:
        total = await session.scalar(select(func.count()).select_from(Email))
        await session.rollback()
        return total == count

    await eventually(lambda: stored(3))
    seen, cursor = await _read_all(client, admin_headers, None)
    assert sorted(e["subject"] for e in seen) == ["first", "second", "third"]
    assert len({e["id"] for e in seen}) == 3
    again = (await client.get(FEED, params={"after": cursor}, headers=admin_headers)).json()
    assert again == {"items": [], "next_cursor": cursor}

    first = next(e for e in seen if e["subject"] == "first")
    replay_path = f"/api/v1/events/{first['event_id']}/replay"

    async def processed() -> bool:
        event = await client.get(f"/api/v1/events/{first['event_id']}", headers=admin_headers)
        return bool(event.json()["status"] == "processed")

    # Replayed unchanged: same id, not on the feed again.
    assert (await client.post(replay_path, headers=admin_headers)).status_code == 202
    await eventually(processed)
    unchanged, cursor = await _read_all(client, admin_headers, cursor)
    assert unchanged == []
    assert (
        await client.get(f"/api/v1/emails/{first['id']}", headers=admin_headers)
    ).status_code == 200

    # As if an older parser had stored something else: the replay changes the email.
    await session.execute(
        update(Email)
        .where(Email.id == uuid.UUID(first["id"]))
        .values(subject="garbled", content_digest="x")
    )
    await session.commit()
    assert (await client.post(replay_path, headers=admin_headers)).status_code == 202
    await eventually(processed)
    changed, cursor = await _read_all(client, admin_headers, cursor)
    assert [(e["id"], e["subject"]) for e in changed] == [(first["id"], "first")]

    # From the start, each email is there once, the replayed one at its new place (last).
    everything, _ = await _read_all(client, admin_headers, None)
    assert [e["subject"] for e in everything][-1] == "first"
    assert len(everything) == 3


async def test_long_poll_returns_new_mail(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    start = (await client.get(FEED, headers=admin_headers)).json()
    assert start["items"] == []
    waiting = asyncio.create_task(
        client.get(FEED, params={"after": start["next_cursor"], "wait": 20}, headers=admin_headers)
    )
    await asyncio.sleep(0)
    await send_mail(client, subject="awaited")
    page = (await waiting).json()
    assert [e["subject"] for e in page["items"]] == ["awaited"]


async def test_feed_rejects_bad_input(
    client: httpx.AsyncClient, admin_headers: dict[str, str], token_for: Any
) -> None:
    bad = await client.get(FEED, params={"after": "not-a-cursor"}, headers=admin_headers)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_cursor"
    assert (await client.get(FEED, params={"wait": 31}, headers=admin_headers)).status_code == 422
    assert (await client.get(FEED)).status_code == 401
    reader = await token_for("events:read")
    assert (await client.get(FEED, headers=reader)).status_code == 403
