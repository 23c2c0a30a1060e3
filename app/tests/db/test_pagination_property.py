"""Property: walking the email pages yields every email exactly once, in order, for any page
size, including many emails with the same received_at (the id breaks the tie)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.paging import MAX_PAGE_SIZE
from app.emails.models import Email
from app.tests.emails.factories import add_email
from app.tests.fixtures.api import TokenFor

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
# Few distinct instants, so most emails share their received_at with others.
INSTANTS = [T0, T0 + timedelta(microseconds=1), T0 + timedelta(seconds=1), T0 + timedelta(days=1)]


async def test_walking_pages_returns_each_email_once_in_order(
    client: httpx.AsyncClient, session: AsyncSession, token_for: TokenFor
) -> None:
    headers = await token_for("emails:read")
    loop = asyncio.get_running_loop()

    async def walk(instants: list[datetime], page_size: int) -> None:
        # The app fixture is per test, not per example: start each example from no emails.
        await session.execute(delete(Email))
        session.expunge_all()
        emails = [await add_email(session, received_at=at, commit=False) for at in instants]
        await session.commit()
        expected = sorted(emails, key=lambda e: (e.received_at, e.id), reverse=True)
        seen: list[uuid.UUID] = []
        cursor: str | None = None
        for _ in range(len(instants) + 2):
            params: dict[str, str | int] = {"limit": page_size}
            if cursor:
                params["cursor"] = cursor
            response = await client.get("/api/v1/emails", headers=headers, params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            assert len(body["items"]) <= page_size
            seen += [uuid.UUID(item["id"]) for item in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert cursor is None, "pagination did not end"
        assert seen == [email.id for email in expected]

    # Hypothesis drives a synchronous function; it runs in a worker thread and hands each
    # example to the test's event loop, which stays free to serve the requests.
    @settings(max_examples=25, deadline=None, database=None)
    @given(
        instants=st.lists(st.sampled_from(INSTANTS), max_size=30),
        page_size=st.one_of(st.integers(1, 7), st.integers(1, MAX_PAGE_SIZE)),
    )
    def property_holds(instants: list[datetime], page_size: int) -> None:
        asyncio.run_coroutine_threadsafe(walk(instants, page_size), loop).result(timeout=120)

    await asyncio.to_thread(property_holds)
