"""Threads: a conversation through the webhook, a reply before its parent, merges, and
assignment from many sessions at once (two workers)."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.emails.models import ThreadKey
from app.emails.threads import ThreadRepository
from app.tests.emails.agent_support import EMAILS, by_message_id, deliver
from app.tests.fixtures.api import TokenFor
from app.tests.mail import agent_messages as m

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture
async def reader(token_for: TokenFor) -> dict[str, str]:
    return await token_for("emails:read")


def _msg(ident: str, minutes: int, parent: str | None = None, refs: list[str] | None = None) -> Any:
    return m.message(
        message_id=ident,
        subject="Budget",
        date=T0 + timedelta(minutes=minutes),
        in_reply_to=parent,
        references=refs if refs is not None else ([parent] if parent else None),
        text=f"Message {ident}",
    )


async def _threads(client: httpx.AsyncClient, headers: dict[str, str], *ids: str) -> list[str]:
    return [(await by_message_id(client, headers, ident))["thread_id"] for ident in ids]


async def test_three_message_conversation_and_one_unrelated(
    client: httpx.AsyncClient, app: FastAPI, reader: dict[str, str]
) -> None:
    a, b, c, d = "a@example.org", "b@example.org", "c@example.org", "d@example.org"
    # One batch: the four are processed side by side.
    await deliver(
        client,
        app,
        [
            _msg(c, 20, parent=b, refs=[a, b]),
            _msg(a, 0),
            _msg(d, 5),
            _msg(b, 10, parent=a),
        ],
    )
    ta, tb, tc, td = await _threads(client, reader, a, b, c, d)
    assert ta == tb == tc
    assert td != ta and td is not None
    page = (await client.get(EMAILS, params={"thread_id": ta}, headers=reader)).json()
    assert [item["message_id"] for item in page["items"]] == [a, b, c]  # oldest first
    assert {item["thread_id"] for item in page["items"]} == {ta}
    # Paging within a thread keeps the order.
    first = (await client.get(EMAILS, params={"thread_id": ta, "limit": 2}, headers=reader)).json()
    rest = await client.get(
        EMAILS, params={"thread_id": ta, "cursor": first["next_cursor"]}, headers=reader
    )
    assert [i["message_id"] for i in first["items"] + rest.json()["items"]] == [a, b, c]
    thread = (await client.get(f"/api/v1/threads/{ta}", headers=reader)).json()
    assert (thread["id"], thread["email_count"], thread["truncated"]) == (ta, 3, False)
    assert [e["message_id"] for e in thread["emails"]] == [a, b, c]
    alone = (await client.get(f"/api/v1/threads/{td}", headers=reader)).json()
    assert [e["message_id"] for e in alone["emails"]] == [d]


async def test_reply_that_arrives_before_its_parent(
    client: httpx.AsyncClient, app: FastAPI, reader: dict[str, str]
) -> None:
    parent, reply = "parent@example.org", "reply@example.org"
    await deliver(client, app, [_msg(reply, 10, parent=parent)])
    await deliver(client, app, [_msg(parent, 0)])
    t_parent, t_reply = await _threads(client, reader, parent, reply)
    assert t_parent == t_reply
    page = (await client.get(EMAILS, params={"thread_id": t_parent}, headers=reader)).json()
    assert [i["message_id"] for i in page["items"]] == [parent, reply]


async def test_a_message_linking_two_threads_merges_them(
    client: httpx.AsyncClient, app: FastAPI, reader: dict[str, str]
) -> None:
    a, b, c = "m-a@example.org", "m-b@example.org", "m-c@example.org"
    # C answers B (naming only B), A starts its own thread; B, arriving last, answers A.
    await deliver(client, app, [_msg(c, 20, parent=b)])
    [t_c] = await _threads(client, reader, c)
    await deliver(client, app, [_msg(a, 0)])
    [t_a] = await _threads(client, reader, a)
    assert t_a != t_c
    await deliver(client, app, [_msg(b, 10, parent=a)])
    merged = set(await _threads(client, reader, a, b, c))
    assert len(merged) == 1
    [survivor] = merged
    assert survivor == t_c  # the older thread survives
    # The id handed out for A's thread before the merge still finds the conversation.
    old = (await client.get(f"/api/v1/threads/{t_a}", headers=reader)).json()
    assert old["id"] == survivor
    assert [e["message_id"] for e in old["emails"]] == [a, b, c]
    page = (await client.get(EMAILS, params={"thread_id": t_a}, headers=reader)).json()
    assert [i["message_id"] for i in page["items"]] == [a, b, c]


async def test_unknown_thread(client: httpx.AsyncClient, reader: dict[str, str]) -> None:
    missing = uuid.uuid4()
    answer = await client.get(f"/api/v1/threads/{missing}", headers=reader)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "thread_not_found"
    page = await client.get(EMAILS, params={"thread_id": str(missing)}, headers=reader)
    assert page.json() == {"items": [], "next_cursor": None}
    bad = await client.get(EMAILS, params={"thread_id": "nope"}, headers=reader)
    assert bad.status_code == 422


async def test_concurrent_assignment_ends_in_one_thread(app: FastAPI) -> None:
    """A chain of replies, each naming only its parent, assigned from separate sessions at
    once and in random order (as several workers would): one thread, however it interleaves."""
    factory = app.state.services.session_factory
    chain = [f"chain-{n}-{uuid.uuid4().hex[:6]}@example.org" for n in range(12)]
    order = list(range(len(chain)))
    random.Random(13).shuffle(order)

    async def assign(n: int) -> uuid.UUID:
        async with factory() as session:
            named = [chain[n - 1]] if n else []
            found = await ThreadRepository(session).assign(key=chain[n], named=named)
            await session.commit()
            return found

    await asyncio.gather(*(assign(n) for n in order))
    async with factory() as session:
        rows = (await session.execute(select(ThreadKey).where(ThreadKey.key.in_(chain)))).scalars()
        threads = {row.thread_id for row in rows}
    assert len(threads) == 1


async def test_two_workers_processing_one_conversation_at_once(
    client: httpx.AsyncClient, app: FastAPI, settings: Any, reader: dict[str, str]
) -> None:
    """Two Kave processes on one database, each handed half of every conversation at the
    same moment: each conversation still ends in one thread of its own."""
    from app.main import create_app
    from app.tests.support import inbound_event, post_events, wait_until

    other = create_app(settings)
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://kave.test") as second:
            conversations = [
                [f"w{n}-{part}-{uuid.uuid4().hex[:6]}@example.org" for part in "abc"]
                for n in range(5)
            ]
            to_first, to_second = [], []
            for a, b, c in conversations:
                to_first += [_msg(c, 20, parent=b, refs=[a, b]), _msg(a, 0)]
                to_second.append(_msg(b, 10, parent=a))
            fields = {"dkim": {"signed": False, "valid": False}, "spf": None}
            answers = await asyncio.gather(
                post_events(client, [inbound_event(msg, **fields) for msg in to_first]),
                post_events(second, [inbound_event(msg, **fields) for msg in to_second]),
            )
            assert [r.status_code for r in answers] == [200, 200]

            async def all_stored() -> bool:
                page = await client.get(EMAILS, params={"limit": 50}, headers=reader)
                return len(page.json()["items"]) == 15

            await wait_until(all_stored, timeout=60)
    threads = [set(await _threads(client, reader, *ids)) for ids in conversations]
    assert all(len(found) == 1 for found in threads)
    assert len(set.union(*threads)) == len(conversations)
