"""Hostile requests end to end, through the signed webhook: a full 1,000-event batch, a message
with 1,000 attachments, a 30 MB attachment, and the hostile mail corpora (app/tests/data/mail,
app/tests/data/hostile) and Mandrill payloads (app/tests/data/hostile/mandrill-events.json).
"""

from __future__ import annotations

import hashlib
import json
import os
import unicodedata
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.core.config import Settings
from app.deliveries.models import Delivery
from app.emails.models import Attachment, Email
from app.mandrill.classify import MESSAGE_EVENTS
from app.processing.models import WebhookEvent
from app.tests.security.support import unexpected_outcomes, wait_settled
from app.tests.support import (
    WEBHOOK_PATH,
    build_message,
    inbound_event,
    message_event,
    post_events,
    signed_form,
)

DATA = Path(__file__).resolve().parents[1] / "data"
MAIL_CORPUS = sorted([*(DATA / "mail").glob("*.eml"), *(DATA / "hostile").glob("*.eml")])
CORPUS_BYTES = {path: path.read_bytes() for path in MAIL_CORPUS}
HOSTILE_EVENTS = json.loads((DATA / "hostile" / "mandrill-events.json").read_text())
# Bidirectional controls would let a name display as something else.
BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def raw_event(raw: bytes, **msg: Any) -> dict[str, Any]:
    """An inbound event whose raw_msg is `raw`; non-UTF-8 bytes ride as surrogate escapes."""
    return {
        "event": "inbound",
        "ts": 1_700_000_000,
        "msg": {"raw_msg": raw.decode("utf-8", "surrogateescape"), "email": "inbox@kave.test"}
        | msg,
    }


def _json_text(events: list[Any]) -> str:
    # orjson refuses surrogate-escaped bytes; the stdlib writes them as \\u escapes.
    return json.dumps(events)


async def _count(app: FastAPI, model: Any, *where: Any) -> int:
    async with app.state.services.session_factory() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def assert_safe_filename(name: str) -> None:
    assert name not in ("", ".", ".."), name
    assert "/" not in name and "\\" not in name, name
    assert not any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in name), repr(name)
    assert not BIDI.intersection(name), repr(name)
    assert name == name.strip() and not name.startswith("."), repr(name)
    assert len(name.encode("utf-8")) <= 255, name


# ------------------------------------------------------------------------ 1,000-event batch


def thousand_mixed_events() -> tuple[list[Any], dict[str, int]]:
    events: list[Any] = []
    kinds = sorted(MESSAGE_EVENTS)
    for i in range(100):
        message = build_message(subject=f"bulk {i}", text=f"body {i}", html=None)
        events.append(inbound_event(message))
    events += [message_event(kinds[i % len(kinds)], message_id=f"bulk-{i}") for i in range(400)]
    events += [message_event(f"future_event_{i}", message_id=f"later-{i}") for i in range(100)]
    events += [
        {
            "type": "blacklist" if i % 2 else "whitelist",
            "action": "add",
            "reject": {"email": f"user{i}@example.org", "reason": "hard-bounce"},
            "entry": {"email": f"user{i}@example.org"},
            "ts": 1_700_000_000 + i,
        }
        for i in range(200)
    ]
    events += list(range(50))  # not objects
    events += [f"garbage {i}" for i in range(50)]
    events += [{"weird": i} for i in range(50)]  # neither an event nor a sync event
    events += [{"event": "inbound", "msg": i} for i in range(50)]  # inbound without a msg object
    assert len(events) == 1000
    return events, {"processed": 700, "ignored": 100, "failed": 200}


@pytest.mark.slow
async def test_a_full_batch_of_1000_mixed_events_is_stored_once_and_settles(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    events, expected = thousand_mixed_events()
    first = await post_events(client, events)
    assert first.status_code == 200, first.text
    assert first.json() == {"accepted": 1000, "duplicates": 0}
    again = await post_events(client, events)
    assert again.status_code == 200
    assert again.json() == {"accepted": 0, "duplicates": 1000}
    final = await wait_settled(app, 1000, timeout=120)
    assert final == expected
    assert await _count(app, WebhookEvent) == 1000
    assert await _count(app, Email) == 100
    assert await _count(app, Delivery) == 600
    # Garbage fails at once with the reason; nothing was retried, nothing ended oddly.
    assert await unexpected_outcomes(app) == []


# --------------------------------------------------------------------- attachments at scale


async def _only_email_attachments(app: FastAPI) -> list[Attachment]:
    async with app.state.services.session_factory() as s:
        [email] = (await s.scalars(select(Email))).all()
        stmt = (
            select(Attachment).where(Attachment.email_id == email.id).order_by(Attachment.position)
        )
        return list((await s.scalars(stmt)).all())


async def test_an_email_with_1000_attachments_is_stored_byte_exact(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    message = EmailMessage()
    message["Subject"] = "a thousand parts"
    message["Message-ID"] = "<thousand-parts@example.org>"
    message.set_content("many")
    sources = [f"part {i} ".encode() * (1 + i % 7) + os.urandom(8) for i in range(1000)]
    for index, data in enumerate(sources):
        message.add_attachment(
            data, maintype="application", subtype="octet-stream", filename=f"../part-{index}.bin"
        )
    response = await post_events(client, [raw_event(message.as_bytes())])
    assert response.json() == {"accepted": 1, "duplicates": 0}
    assert await wait_settled(app, 1, timeout=120) == {"processed": 1}
    attachments = await _only_email_attachments(app)
    assert len(attachments) == 1000
    store = app.state.services.blob_store
    for attachment, source in zip(attachments, sources, strict=True):
        assert attachment.filename == f"part-{attachment.position}.bin"
        assert attachment.sha256 == hashlib.sha256(source).hexdigest()
        assert hashlib.sha256(await store.get(attachment.blob_key)).digest() == (
            hashlib.sha256(source).digest()
        )


@pytest.mark.slow
async def test_a_30_mb_attachment_is_stored_byte_exact(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    payload = os.urandom(30 * 1024 * 1024)
    message = build_message(
        subject="thirty megabytes",
        attachments=[("dump.bin", "application/octet-stream", payload)],
    )
    body, headers = signed_form(_json_text([raw_event(message.as_bytes())]))
    del message
    # ~45 MB once base64, JSON and form encoded: under the default body limit.
    assert 40 * 2**20 < len(body) < settings.max_body_bytes
    response = await client.post(WEBHOOK_PATH, content=body, headers=headers)
    del body
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 1, "duplicates": 0}
    assert await wait_settled(app, 1, timeout=180) == {"processed": 1}
    [attachment] = await _only_email_attachments(app)
    assert attachment.size == len(payload)
    assert attachment.sha256 == hashlib.sha256(payload).hexdigest()
    stored = await app.state.services.blob_store.get(attachment.blob_key)
    assert hashlib.sha256(stored).digest() == hashlib.sha256(payload).digest()


# ------------------------------------------------------------------------------ mail corpora


@pytest.mark.parametrize(
    "path", MAIL_CORPUS, ids=[f"{p.parent.name}/{p.name}" for p in MAIL_CORPUS]
)
async def test_every_corpus_message_is_processed_with_safe_filenames(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    path: Path,
    request: pytest.FixtureRequest,
) -> None:
    raw = CORPUS_BYTES[path]
    response = await post_events(client, _json_text([raw_event(raw)]))
    assert response.json() == {"accepted": 1, "duplicates": 0}
    assert await wait_settled(app, 1) == {"processed": 1}, await unexpected_outcomes(app)
    async with app.state.services.session_factory() as s:
        [email] = (await s.scalars(select(Email))).all()
        attachments = (
            await s.scalars(select(Attachment).where(Attachment.email_id == email.id))
        ).all()
    assert email.raw_size == len(raw)
    assert await app.state.services.blob_store.get(email.raw_blob_key) == raw
    for attachment in attachments:
        assert_safe_filename(attachment.filename)
        # The name reaches a response header: it must not be able to add or split a header.
        download = await client.get(
            f"/api/v1/attachments/{attachment.id}/content", headers=admin_headers
        )
        assert download.status_code == 200
        disposition = download.headers["content-disposition"]
        assert disposition.isprintable() and disposition.isascii(), disposition
        fallback = disposition.split('filename="', 1)[1].split('"', 1)[0]
        assert "/" not in fallback and "\\" not in fallback
        assert hashlib.sha256(download.content).hexdigest() == attachment.sha256


async def test_the_hostile_corpus_is_all_there() -> None:
    names = {p.name for p in MAIL_CORPUS}
    assert {
        "filename-controls.eml",
        "header-injection.eml",
        "charset-abuse.eml",
        "boundary-abuse.eml",
        "non-utf8-body.eml",
        "unknown-charset.eml",
        "broken-boundary.eml",
        "header-injection-filename.eml",
    } <= names
    assert all(p.stat().st_size < 50_000 for p in MAIL_CORPUS)
    assert len(HOSTILE_EVENTS) >= 10


# ------------------------------------------------------------------- hostile Mandrill values


@pytest.mark.parametrize("case", HOSTILE_EVENTS, ids=[c["id"] for c in HOSTILE_EVENTS])
async def test_hostile_mandrill_events_value(
    app: FastAPI,
    client: httpx.AsyncClient,
    case: dict[str, Any],
    is_postgres: bool,
    request: pytest.FixtureRequest,
) -> None:
    value = case["mandrill_events"]
    if "repeat" in case:  # too big to commit: "[" * 2000 + "]" * 2000
        value = value * case["repeat"][0] + case["suffix"] * case["repeat"][1]
    body, headers = signed_form(value)
    response = await client.post(WEBHOOK_PATH, content=body, headers=headers)
    assert response.status_code == case["status"], response.text
    if response.status_code != 200:
        assert response.json()["error"]["code"] == "malformed_payload"
        assert await _count(app, WebhookEvent) == 0
        return
    ack = response.json()
    assert ack["accepted"] + ack["duplicates"] == case["events"]
    settled = await wait_settled(app, ack["accepted"])
    assert {k: v for k, v in settled.items() if v} == case["settles"]
    assert await unexpected_outcomes(app) == []


# ------------------------------------------------------------------ hostile audience forms

AUDIENCE = "/api/v1/webhooks/mailchimp/audience/audience-token-for-tests"


@pytest.mark.parametrize(
    "body",
    [
        b"type=subscribe&fired_at=2026-11-21+09%3A30%3A00&data%5Bemail%5D=a%00b%40example.com"
        b"&data%5Blist_id%5D=l%00&data%5Bmerges%5D%5BFNAME%5D=%00",
        b"type=profile&fired_at=%ED%A0%80&data%5Bemail%5D=%FF%FE%40example.com"
        b"&data%5Bmerges%5D%5BLNAME%5D=%ED%B2%80",
        b"type=sub%00scribe&data%5Bemail%5D=x%40example.com",
    ],
    ids=["nul", "not-utf8", "nul-in-type"],
)
async def test_hostile_audience_forms_are_stored_and_settle(
    app: FastAPI,
    client: httpx.AsyncClient,
    body: bytes,
    is_postgres: bool,
    request: pytest.FixtureRequest,
) -> None:
    response = await client.post(
        AUDIENCE, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 1, "duplicates": 0}
    await wait_settled(app, 1)
    assert await unexpected_outcomes(app) == []
