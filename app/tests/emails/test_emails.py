"""Emails and attachments: list, filters, cursors, detail, raw source, downloads, deletion."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.paging import Position, encode_cursor
from app.emails.models import Attachment, Email
from app.storage.base import BlobStore, content_key
from app.tests.emails.factories import add_email
from app.tests.fixtures.api import TokenFor

EMAILS = "/api/v1/emails"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
async def reader(token_for: TokenFor) -> dict[str, str]:
    return await token_for("emails:read")


@pytest.fixture
def store(app: FastAPI) -> BlobStore:
    blob_store: BlobStore = app.state.services.blob_store
    return blob_store


async def test_empty_list(client: httpx.AsyncClient, reader: dict[str, str]) -> None:
    response = await client.get(EMAILS, headers=reader)
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


async def test_list_items_newest_first_with_attachment_count(
    client: httpx.AsyncClient, reader: dict[str, str], session: AsyncSession, store: BlobStore
) -> None:
    old = await add_email(session, store, subject="old", received_at=T0)
    new = await add_email(
        session,
        store,
        subject="new",
        received_at=T0 + timedelta(minutes=1),
        attachments=[("a.txt", "text/plain", b"a"), ("b.bin", "application/octet-stream", b"b")],
    )
    response = await client.get(EMAILS, headers=reader)
    items = response.json()["items"]
    assert [i["id"] for i in items] == [str(new.id), str(old.id)]
    assert items[0] == {
        "id": str(new.id),
        "message_id": new.message_id,
        "subject": "new",
        "from": {"email": "alice@example.org", "name": "Alice Example"},
        "to": [{"email": "inbox@kave.example.com", "name": None}],
        "envelope_recipient": None,
        "received_at": "2026-11-20T12:01:00Z",
        "attachment_count": 2,
        # Written straight to the table: not processed, so not computed.
        "thread_id": None,
        "category": None,
        "sender_authenticated": None,
    }
    assert items[1]["attachment_count"] == 0


async def test_filters(
    client: httpx.AsyncClient, reader: dict[str, str], session: AsyncSession, store: BlobStore
) -> None:
    a = await add_email(
        session,
        store,
        subject="Invoice 100% paid",
        from_address="Billing@Shop.example",
        to=["Sales@Kave.example.com"],
        received_at=T0,
        attachments=[("invoice.pdf", "application/pdf", b"%PDF")],
    )
    b = await add_email(
        session,
        subject="Weekly_report",
        from_address="bob@example.org",
        to=["team@kave.example.com"],
        cc=["boss@kave.example.com"],
        received_at=T0 + timedelta(hours=1),
    )
    c = await add_email(
        session,
        subject="Invoice 1000 due",
        from_address="billing@other.example",
        to=[],
        envelope_recipient="Catchall@Kave.example.com",
        received_at=T0 + timedelta(hours=2),
    )

    async def ids(**params: str) -> list[str]:
        response = await client.get(EMAILS, headers=reader, params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await ids(**{"from": "BILLING@"}) == [str(c.id), str(a.id)]
    assert await ids(**{"from": "shop.EXAMPLE"}) == [str(a.id)]
    assert await ids(to="sales@kave") == [str(a.id)]
    assert await ids(to="BOSS") == [str(b.id)]
    assert await ids(to="catchall@") == [str(c.id)]
    assert await ids(subject="invoice") == [str(c.id), str(a.id)]
    # % and _ match literally, not as LIKE wildcards.
    assert await ids(subject="100%") == [str(a.id)]
    assert await ids(subject="1%0") == []
    assert await ids(subject="y_r") == [str(b.id)]
    assert await ids(subject="y_") == [str(b.id)]
    assert await ids(subject="k_r") == []
    assert await ids(has_attachments="true") == [str(a.id)]
    assert await ids(has_attachments="false") == [str(c.id), str(b.id)]
    assert await ids(received_after="2026-11-20T13:00:00Z") == [str(c.id), str(b.id)]
    assert await ids(received_before="2026-11-20T13:00:00Z") == [str(a.id)]
    # A time without a zone is UTC; an offset is honoured.
    assert await ids(received_after="2026-11-20T13:00:00") == [str(c.id), str(b.id)]
    assert await ids(received_before="2026-11-20T14:00:00+01:00") == [str(a.id)]
    assert await ids(**{"from": "billing", "has_attachments": "false"}) == [str(c.id)]


@pytest.mark.parametrize("limit", ["0", "201", "x"])
async def test_bad_limit_is_422(
    client: httpx.AsyncClient, reader: dict[str, str], limit: str
) -> None:
    response = await client.get(EMAILS, headers=reader, params={"limit": limit})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_pages_follow_next_cursor(
    client: httpx.AsyncClient, reader: dict[str, str], session: AsyncSession
) -> None:
    emails = [await add_email(session, received_at=T0 + timedelta(seconds=i % 2)) for i in range(5)]
    expected = [e.id for e in sorted(emails, key=lambda e: (e.received_at, e.id), reverse=True)]
    seen: list[uuid.UUID] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        body = (await client.get(EMAILS, headers=reader, params=params)).json()
        seen += [uuid.UUID(i["id"]) for i in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    assert pages == 3


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!",
        "abc",
        _b64(b"not json"),
        _b64(b'{"a": 1}'),
        _b64(b'["emails", "yesterday", "00000000000000000000000000000000"]'),
        _b64(b'["emails", "2026-11-20T12:00:00", "00000000000000000000000000000000"]'),
        _b64(b'["emails", "2026-11-20T12:00:00+00:00", "not-a-uuid"]'),
        _b64(b'["emails", 1, 2]'),
        encode_cursor("events", Position(T0, uuid.uuid4())),
        "A" * 300,
    ],
)
async def test_invalid_cursor_is_400(
    client: httpx.AsyncClient, reader: dict[str, str], cursor: str
) -> None:
    response = await client.get(EMAILS, headers=reader, params={"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cursor"


async def test_detail(
    client: httpx.AsyncClient, reader: dict[str, str], session: AsyncSession, store: BlobStore
) -> None:
    email = await add_email(
        session,
        store,
        cc=["carol@example.org"],
        envelope_recipient="inbox@kave.example.com",
        received_at=T0,
        raw=b"Subject: Hello\r\n\r\nbody\r\n",
        attachments=[("b.txt", "text/plain", b"second"), ("a.txt", "text/plain", b"first")],
        spam_score=1.5,
        spam_rules=[{"name": "HTML_MESSAGE", "score": 0.1, "description": None}],
        spf_result="pass",
        spf_detail="sender SPF authorized",
        dkim_signed=True,
        dkim_valid=False,
        tags=["inbound"],
    )
    response = await client.get(f"{EMAILS}/{email.id}", headers=reader)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(email.id)
    assert body["from"] == {"email": "alice@example.org", "name": "Alice Example"}
    assert body["cc"] == [{"email": "carol@example.org", "name": None}]
    assert body["envelope_recipient"] == "inbox@kave.example.com"
    assert body["text_body"] == "text"
    assert body["html_body"] == "<p>html</p>"
    assert body["headers"] == {"Subject": "Hello"}
    assert body["spam"] == {
        "score": 1.5,
        "rules": [{"name": "HTML_MESSAGE", "score": 0.1, "description": None}],
    }
    assert body["spf"] == {"result": "pass", "detail": "sender SPF authorized"}
    assert body["dkim"] == {"signed": True, "valid": False}
    assert body["tags"] == ["inbound"]
    assert body["raw_available"] is True
    assert body["raw_size"] == len(b"Subject: Hello\r\n\r\nbody\r\n")
    assert [a["filename"] for a in body["attachments"]] == ["b.txt", "a.txt"]
    first = body["attachments"][0]
    assert first["size"] == 6
    assert first["sha256"] == hashlib.sha256(b"second").hexdigest()
    assert first["content_url"] == f"/api/v1/attachments/{first['id']}/content"


async def test_unknown_and_malformed_ids(client: httpx.AsyncClient, reader: dict[str, str]) -> None:
    unknown = uuid.uuid4()
    for path, code in [
        (f"{EMAILS}/{unknown}", "email_not_found"),
        (f"{EMAILS}/{unknown}/raw", "email_not_found"),
        (f"/api/v1/attachments/{unknown}", "attachment_not_found"),
        (f"/api/v1/attachments/{unknown}/content", "attachment_not_found"),
    ]:
        response = await client.get(path, headers=reader)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == code
    response = await client.get(f"{EMAILS}/not-a-uuid", headers=reader)
    assert response.status_code == 422


async def test_raw_source_is_streamed(
    client: httpx.AsyncClient, reader: dict[str, str], session: AsyncSession, store: BlobStore
) -> None:
    raw = b"From: a@example.org\r\nSubject: raw\r\n\r\n" + b"x" * 200_000
    email = await add_email(session, store, raw=raw)
    response = await client.get(f"{EMAILS}/{email.id}/raw", headers=reader)
    assert response.status_code == 200
    assert response.content == raw
    assert response.headers["content-type"] == "message/rfc822"
    assert response.headers["content-length"] == str(len(raw))
    assert response.headers["content-disposition"].startswith("attachment;")
    assert f"{email.id}.eml" in response.headers["content-disposition"]


async def test_raw_of_an_email_built_from_fields_is_404(
    client: httpx.AsyncClient, reader: dict[str, str], session: AsyncSession
) -> None:
    email = await add_email(session, raw=None)
    response = await client.get(f"{EMAILS}/{email.id}/raw", headers=reader)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "raw_message_not_available"


async def test_raw_with_a_missing_blob_is_404(
    client: httpx.AsyncClient, reader: dict[str, str], session: AsyncSession
) -> None:
    email = await add_email(session, store=None, raw=b"never stored")
    response = await client.get(f"{EMAILS}/{email.id}/raw", headers=reader)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "blob_not_found"


async def test_delete_removes_rows_and_unshared_blobs(
    client: httpx.AsyncClient,
    token_for: TokenFor,
    session: AsyncSession,
    store: BlobStore,
) -> None:
    shared = ("shared.txt", "text/plain", b"in both emails")
    own = ("own.txt", "text/plain", b"only in the deleted email")
    raw = b"Subject: doomed\r\n\r\nbye\r\n"
    doomed = await add_email(session, store, raw=raw, attachments=[shared, own])
    keeper = await add_email(session, store, attachments=[shared])
    headers = await token_for("emails:read", "emails:delete")

    response = await client.delete(f"{EMAILS}/{doomed.id}", headers=headers)
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(f"{EMAILS}/{doomed.id}", headers=headers)).status_code == 404
    assert (await client.get(f"{EMAILS}/{keeper.id}", headers=headers)).status_code == 200
    count = select(func.count()).select_from(Attachment).where(Attachment.email_id == doomed.id)
    assert await session.scalar(count) == 0
    assert await session.scalar(select(func.count()).where(Email.id == doomed.id)) == 0
    await session.commit()
    assert await store.exists(content_key(shared[2])[1])
    assert not await store.exists(content_key(own[2])[1])
    assert not await store.exists(content_key(raw)[1])

    again = await client.delete(f"{EMAILS}/{doomed.id}", headers=headers)
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "email_not_found"


@pytest.mark.parametrize("field", ["from", "to", "subject"])
async def test_nul_in_a_text_filter_is_422(
    client: httpx.AsyncClient, reader: dict[str, str], field: str
) -> None:
    # PostgreSQL text cannot hold NUL; it must be a validation error, not a driver error.
    response = await client.get(EMAILS, headers=reader, params={field: "a\x00b"})
    assert response.status_code == 422


async def test_delete_also_purges_the_webhook_payload(
    app: FastAPI, client: httpx.AsyncClient, token_for: TokenFor
) -> None:
    from app.processing.models import WebhookEvent
    from app.tests.support import inbound_event, post_events, wait_until

    assert (await post_events(client, [inbound_event()])).json()["accepted"] == 1

    async def processed() -> bool:
        async with app.state.services.session_factory() as s:
            return (await s.scalar(select(WebhookEvent.status))) == "processed"

    await wait_until(processed)
    async with app.state.services.session_factory() as s:
        email_id = await s.scalar(select(Email.id))
    headers = await token_for("emails:read", "emails:delete", "events:read")
    assert (await client.delete(f"{EMAILS}/{email_id}", headers=headers)).status_code == 204
    async with app.state.services.session_factory() as s:
        event = (await s.scalars(select(WebhookEvent))).one()
    assert event.payload is None
    assert event.payload_purged_at is not None
    shown = await client.get(f"/api/v1/events/{event.id}?include_payload=true", headers=headers)
    assert shown.status_code == 200
    assert shown.json()["payload"] is None
