"""The inbound endpoint end to end: verify, store, acknowledge, process, dedupe."""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.deliveries.models import Delivery
from app.emails.models import Attachment, Email
from app.processing.models import EventStatus, WebhookEvent
from app.storage.local import LocalBlobStore
from app.tests.support import (
    WEBHOOK_PATH,
    build_message,
    inbound_event,
    message_event,
    post_events,
    signed_form,
    wait_until,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "mandrill"


async def count(session: AsyncSession, model: Any, *where: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def statuses(app: FastAPI) -> dict[str, int]:
    async with app.state.services.session_factory() as s:
        rows = await s.execute(
            select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)
        )
        return {status: n for status, n in rows.all()}


async def wait_settled(app: FastAPI, expected: int) -> dict[str, int]:
    async def settled() -> bool:
        seen = await statuses(app)
        return sum(seen.get(s, 0) for s in ("processed", "failed", "ignored")) >= expected

    await wait_until(settled)
    return await statuses(app)


async def test_url_check_head_and_get(client: httpx.AsyncClient) -> None:
    assert (await client.head(WEBHOOK_PATH)).status_code == 200
    assert (await client.get(WEBHOOK_PATH)).status_code == 200


async def test_setup_check_is_accepted_and_stores_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    response = await post_events(client, "[]", key="test-webhook")
    assert response.status_code == 200
    assert response.json() == {"accepted": 0, "duplicates": 0}
    assert await count(session, WebhookEvent) == 0


@pytest.mark.parametrize("settings_overrides", [{"environment": "production"}])
async def test_setup_check_still_works_in_production_where_that_key_is_refused(
    client: httpx.AsyncClient, session: AsyncSession, settings: Any
) -> None:
    # Production refuses `test-webhook` as MAILCHIMP_WEBHOOK_SECRET; Mailchimp's URL check,
    # the empty batch signed with it, is still answered 200 (and stores nothing).
    assert settings.environment == "production"
    assert b"test-webhook" not in settings.webhook_keys
    response = await post_events(client, "[]", key="test-webhook")
    assert response.status_code == 200
    assert response.json() == {"accepted": 0, "duplicates": 0}
    forged = await post_events(client, [message_event()], key="test-webhook")
    assert forged.status_code == 401
    assert await count(session, WebhookEvent) == 0


async def test_missing_and_wrong_signature_are_401(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    body, headers = signed_form([inbound_event()])
    del headers["X-Mandrill-Signature"]
    missing = await client.post(WEBHOOK_PATH, content=body, headers=headers)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "invalid_signature"
    wrong = await post_events(client, [inbound_event()], key="some-other-key")
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_signature"
    assert await count(session, WebhookEvent) == 0


async def test_authentic_but_malformed_is_400(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    response = await post_events(client, '{"not": "an array"}')
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_payload"
    assert await count(session, WebhookEvent) == 0


async def test_captured_real_batch_is_accepted_and_one_changed_byte_is_401(
    client: httpx.AsyncClient, app: FastAPI, settings: Any
) -> None:
    fixture = json.loads((DATA / "click-batch-signed.json").read_text())
    settings.mailchimp_webhook_url = fixture["webhook_url"]
    settings.mailchimp_webhook_secret = [SecretStr(fixture["webhook_key"])]
    settings.__dict__.pop("webhook_keys", None)
    headers = fixture["headers"]
    response = await client.post(WEBHOOK_PATH, content=fixture["body_urlencoded"], headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] >= 1
    tampered = fixture["body_urlencoded"].replace("Postbox", "Postbax", 1)
    bad = await client.post(WEBHOOK_PATH, content=tampered, headers=headers)
    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == "invalid_signature"
    await wait_settled(app, body["accepted"])
    async with app.state.services.session_factory() as s:
        deliveries = (await s.scalars(select(Delivery))).all()
    assert {d.event_type for d in deliveries} == {"click"}
    assert {d.message_id for d in deliveries} == {"exampleaaaaaaaaaaaaaaaaaaaaaaaaa"}


async def test_inbound_email_with_attachments_is_stored_and_deduplicated(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    pdf = os.urandom(50_000)
    note = "Grüße, Ünïcode".encode()
    message = build_message(
        subject="Résumé attached ✓",
        attachments=[
            ("Résumé 2026.pdf", "application/pdf", pdf),
            ("../../etc/passwd", "text/plain", note),
        ],
    )
    events = [inbound_event(message), message_event("open"), message_event("click")]
    first = await post_events(client, events)
    assert first.status_code == 200
    assert first.json() == {"accepted": 3, "duplicates": 0}
    again = await post_events(client, events)  # Mailchimp retries whole batches
    assert again.json() == {"accepted": 0, "duplicates": 3}

    assert (await wait_settled(app, 3)) == {"processed": 3}
    async with app.state.services.session_factory() as s:
        emails = (await s.scalars(select(Email))).all()
        assert len(emails) == 1
        email = emails[0]
        assert email.subject == "Résumé attached ✓"
        assert email.from_address == "alice@example.org"
        assert email.spf_result == "pass" and email.dkim_valid is True and email.spam_score == 1.5
        attachments = (
            await s.scalars(
                select(Attachment)
                .where(Attachment.email_id == email.id)
                .order_by(Attachment.position)
            )
        ).all()
    assert [a.filename for a in attachments] == ["Résumé 2026.pdf", "passwd"]
    store = app.state.services.blob_store
    for attachment, source in zip(attachments, [pdf, note], strict=True):
        stored = await store.get(attachment.blob_key)
        assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(source).hexdigest()
    assert email.raw_blob_key is not None
    assert await store.get(email.raw_blob_key) == message.as_bytes()


async def test_an_odd_event_never_refuses_the_batch(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    events: list[Any] = [inbound_event(), "not an object", {"event": "inbound"}, {"weird": True}]
    response = await post_events(client, events)
    assert response.status_code == 200
    assert response.json() == {"accepted": 4, "duplicates": 0}
    final = await wait_settled(app, 4)
    assert final == {"processed": 1, "failed": 3}
    async with app.state.services.session_factory() as s:
        failed = (
            await s.scalars(select(WebhookEvent).where(WebhookEvent.status == EventStatus.FAILED))
        ).all()
    assert all(e.last_error and "PermanentFailure" in e.last_error for e in failed)
    assert all(e.attempts == 1 for e in failed)  # no pointless retries of a broken event


async def test_unknown_message_event_is_ignored(client: httpx.AsyncClient, app: FastAPI) -> None:
    response = await post_events(client, [message_event("future_event_type")])
    assert response.json()["accepted"] == 1
    assert await wait_settled(app, 1) == {"ignored": 1}


async def test_sync_events_are_recorded(client: httpx.AsyncClient, app: FastAPI) -> None:
    sync = {
        "type": "blacklist",
        "action": "add",
        "ts": 1_700_000_000,
        "reject": {"email": "x@example.org", "reason": "hard-bounce"},
    }
    white = {
        "type": "whitelist",
        "action": "add",
        "ts": 1_700_000_001,
        "entry": {"email": "y@example.org"},
    }
    response = await post_events(client, [sync, white, sync])
    assert response.json() == {"accepted": 2, "duplicates": 1}
    await wait_settled(app, 2)
    async with app.state.services.session_factory() as s:
        rows = (await s.scalars(select(Delivery).order_by(Delivery.recipient))).all()
    assert [(d.kind, d.event_type, d.recipient) for d in rows] == [
        ("sync", "blacklist", "x@example.org"),
        ("sync", "whitelist", "y@example.org"),
    ]


async def test_json_fallback_when_raw_msg_is_empty(client: httpx.AsyncClient, app: FastAPI) -> None:
    data = b"%PDF-1.4 fake"
    import base64

    event = inbound_event(
        raw_msg="",
        text="fallback text",
        html="<b>fallback</b>",
        attachments={
            "a.pdf": {
                "name": "a.pdf",
                "type": "application/pdf",
                "content": base64.b64encode(data).decode(),
                "base64": True,
            }
        },
    )
    assert (await post_events(client, [event])).json()["accepted"] == 1
    assert await wait_settled(app, 1) == {"processed": 1}
    async with app.state.services.session_factory() as s:
        email = (await s.scalars(select(Email))).one()
        attachment = (await s.scalars(select(Attachment))).one()
    assert email.text_body == "fallback text" and email.raw_blob_key is None
    assert await app.state.services.blob_store.get(attachment.blob_key) == data


@pytest.mark.parametrize("settings_overrides", [{"storage_backend": "s3"}])
async def test_inbound_on_s3_storage(client: httpx.AsyncClient, app: FastAPI) -> None:
    data = os.urandom(20_000)
    message = build_message(attachments=[("photo.jpg", "image/jpeg", data)])
    assert (await post_events(client, [inbound_event(message)])).json()["accepted"] == 1
    assert await wait_settled(app, 1) == {"processed": 1}
    async with app.state.services.session_factory() as s:
        attachment = (await s.scalars(select(Attachment))).one()
    stored = await app.state.services.blob_store.get(attachment.blob_key)
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(data).hexdigest()
    assert (
        attachment.blob_key
        == f"sha256/{attachment.sha256[:2]}/{attachment.sha256[2:4]}/{attachment.sha256}"
    )


async def test_storage_outage_is_retried_until_it_comes_back(
    migrated_database: str, tmp_path: Path
) -> None:
    """A real S3 server goes away while events wait, and comes back on the same port."""
    from app.main import create_app
    from app.tests.conftest import _clear_tables, make_settings
    from app.tests.fixtures.s3 import start_moto_server

    server, url = start_moto_server()
    port = int(url.rsplit(":", 1)[1])
    settings = make_settings(
        migrated_database,
        tmp_path,
        storage_backend="s3",
        s3_endpoint_url=url,
        s3_bucket="kave-outage",
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        server.stop()  # storage down before anything is processed
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://kave.test") as c:
            message = build_message(attachments=[("a.bin", "application/octet-stream", b"abc")])
            assert (await post_events(c, [inbound_event(message)])).json()["accepted"] == 1
            ready = await c.get("/health/ready")
            assert ready.status_code == 503

            async def retried() -> bool:
                async with application.state.services.session_factory() as s:
                    event = (await s.scalars(select(WebhookEvent))).one()
                return event.attempts >= 2 and "StorageUnavailable" in (event.last_error or "")

            await wait_until(retried, timeout=30)
            server, _ = start_moto_server(port)  # storage is back
            try:
                assert await wait_settled(application, 1) == {"processed": 1}
                assert (await c.get("/health/ready")).status_code == 200
            finally:
                server.stop()
        async with application.state.services.session_factory() as s:
            event = (await s.scalars(select(WebhookEvent))).one()
            email = (await s.scalars(select(Email))).one()
        assert event.last_error is None and event.status == "processed"
        assert email.raw_blob_key is not None
    await _clear_tables(migrated_database)


async def test_a_failed_blob_flush_commits_nothing_and_is_retried(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Blobs are written without their own fsyncs; the batch's one flush gates the commit."""
    store = app.state.services.blob_store
    assert isinstance(store, LocalBlobStore)
    working = store._syncfs
    if working is None:
        pytest.skip("syncfs is Linux's; elsewhere every blob is flushed as it is written")
    flushes: list[int] = []

    def failing(fd: int) -> int:
        flushes.append(fd)
        ctypes.set_errno(errno.EIO)
        return -1

    store._syncfs = failing
    try:
        data = os.urandom(2048)
        message = build_message(attachments=[("a.bin", "application/octet-stream", data)])
        assert (await post_events(client, [inbound_event(message)])).json()["accepted"] == 1

        async def retried() -> bool:
            async with app.state.services.session_factory() as s:
                event = (await s.scalars(select(WebhookEvent))).one()
            return event.attempts >= 2 and "StorageUnavailable" in (event.last_error or "")

        await wait_until(retried, timeout=30)
        assert flushes, "the flush was never tried"
        # Written but never flushed, so never recorded: no email points at those blobs.
        async with app.state.services.session_factory() as s:
            assert await count(s, Email) == 0
    finally:
        store._syncfs = working
    assert await wait_settled(app, 1) == {"processed": 1}
    async with app.state.services.session_factory() as s:
        email = (await s.scalars(select(Email))).one()
        attachment = (await s.scalars(select(Attachment))).one()
    assert email.raw_blob_key is not None
    assert await store.get(attachment.blob_key) == data


@pytest.mark.parametrize("settings_overrides", [{"log_format": "json", "log_level": "INFO"}])
async def test_one_access_line_carries_the_batch_counts(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    await post_events(client, [message_event("open"), message_event("click")])
    text = capsys.readouterr().err
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    lines = [r for r in records if r.get("path") == WEBHOOK_PATH]
    assert len(lines) == 1
    assert lines[0]["status"] == 200
    assert (lines[0]["events"], lines[0]["accepted"], lines[0]["duplicates"]) == (2, 2, 0)
    assert "X-Mandrill-Signature" not in text
    assert "mandrill_events" not in text


def test_outages_never_exhaust_the_attempts() -> None:
    from sqlalchemy.exc import OperationalError

    from app.mail.errors import UnparseableMessage
    from app.processing.tasks import is_outage
    from app.storage.errors import StorageUnavailable

    assert is_outage(StorageUnavailable("down"))
    assert is_outage(OperationalError("select 1", None, ConnectionRefusedError()))
    assert is_outage(ConnectionResetError())
    assert not is_outage(UnparseableMessage("bad"))
    assert not is_outage(ValueError("a bug"))


@pytest.mark.parametrize("settings_overrides", [{"storage_backend": "s3", "max_attempts": 2}])
async def test_a_long_storage_outage_retries_past_max_attempts(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    from app.storage.errors import StorageUnavailable

    store = app.state.services.blob_store
    real_put = store.put
    failures = {"left": 6}  # three times MAX_ATTEMPTS

    async def put_during_outage(key: str, data: bytes, **kwargs: Any) -> None:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise StorageUnavailable("S3 is down")
        await real_put(key, data, **kwargs)

    store.put = put_during_outage
    try:
        assert (await post_events(client, [inbound_event()])).json()["accepted"] == 1
        assert await wait_settled(app, 1) == {"processed": 1}
    finally:
        store.put = real_put
    async with app.state.services.session_factory() as s:
        event = (await s.scalars(select(WebhookEvent))).one()
    assert event.attempts > 2
