"""Large webhook bodies: decoded as they stream in and spooled to a temporary file, so an unsigned
one is refused 401 without ever being whole in memory, while an authentic one is stored and
processed exactly as the small path would, and one over MAX_BODY_BYTES is a 413."""

from __future__ import annotations

import asyncio
import base64
import email.policy
import hashlib
import json
import os
import tempfile
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.core.config import Settings
from app.emails.models import Attachment, Email
from app.mandrill.classify import classify_batch
from app.mandrill.form import decode_events, parse_form
from app.mandrill.signature import mandrill_signature
from app.mandrill.streaming import SPOOL_MEMORY_BYTES, STREAM_THRESHOLD_BYTES
from app.processing.models import WebhookEvent
from app.tests.core.test_errors_and_middleware import assert_envelope
from app.tests.security.support import wait_settled
from app.tests.support import WEBHOOK_KEY, WEBHOOK_PATH, WEBHOOK_URL, build_message, inbound_event

CHUNK = 64 * 1024
MIB = 1024 * 1024


def spool_files() -> dict[int, int]:
    """fd -> size of this process's open, unlinked files in the temporary directory."""
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
            if target.startswith(tempfile.gettempdir()) and target.endswith("(deleted)"):
                found[int(name)] = os.fstat(int(name)).st_size
        except OSError:
            continue
    return found


class Streamed:
    """A body sent in CHUNK pieces that watches the server's spool files while it is sent."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.before = set(spool_files())
        self.largest_spool = 0
        self.sent_all = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.body), CHUNK):
            spools = spool_files()
            self.largest_spool = max(
                [self.largest_spool, *(n for fd, n in spools.items() if fd not in self.before)]
            )
            yield self.body[start : start + CHUNK]
        self.sent_all = True


def mandrill_form(events: list[dict[str, Any]], *, key: str = WEBHOOK_KEY) -> tuple[bytes, str]:
    """The body and signature Mandrill would send: its JSON escapes `/`, then it url-encodes."""
    value = json.dumps(events).replace("/", "\\/")
    params = [("mandrill_events", value)]
    return urlencode(params).encode(), mandrill_signature(key.encode(), WEBHOOK_URL, params)


def headers(signature: str | None, body: bytes, *, declared: bool) -> dict[str, str]:
    out = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature is not None:
        out["X-Mandrill-Signature"] = signature
    if declared:
        out["Content-Length"] = str(len(body))
    return out


def large_event(attachment: bytes, subject: str) -> tuple[dict[str, Any], bytes]:
    message = build_message(
        subject=subject, attachments=[("blob.bin", "application/octet-stream", attachment)]
    )
    content = base64.b64encode(attachment).decode()
    attachments = {
        "blob.bin": {
            "name": "blob.bin",
            "type": "application/octet-stream",
            "content": content,
            "base64": True,
        }
    }
    return inbound_event(message, attachments=attachments), message.as_bytes()


def test_the_default_limit_admits_25_mib_of_attachments_as_mandrill_sends_them() -> None:
    # Mandrill caps messages at 25 MB; the body carries the message (base64 lines, CRLF) and
    # each attachment again, JSON-escaped (`\/`) and url-encoded. Linear in the attachment.
    attachment = os.urandom(MIB)
    event, _ = large_event(attachment, "one MiB")
    message = build_message(attachments=[("blob.bin", "application/octet-stream", attachment)])
    event["msg"]["raw_msg"] = message.as_bytes(policy=email.policy.SMTP).decode()
    body, _ = mandrill_form([event])
    assert 3.0 < len(body) / MIB < 3.2  # 25 MiB of attachments: a ~77 MiB body
    assert 25 * len(body) < Settings(_env_file=None).max_body_bytes


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
@pytest.mark.parametrize("signature", [None, "bm90IHRoZSByaWdodCBzaWduYXR1cmU="])
async def test_unsigned_large_body_is_refused_401_without_being_held_in_memory(
    client: httpx.AsyncClient, app: FastAPI, declared: bool, signature: str | None
) -> None:
    event, _ = large_event(os.urandom(3 * MIB), "unsigned")
    body, _ = mandrill_form([event])
    assert len(body) > 8 * MIB
    # Once before measuring: the first large body of a process also pays for one-time costs
    # (lazy imports, caches).
    warm_up = Streamed(body)
    await client.post(
        WEBHOOK_PATH, content=warm_up, headers=headers(signature, body, declared=declared)
    )
    streamed = Streamed(body)
    tracemalloc.start()
    try:
        response = await client.post(
            WEBHOOK_PATH, content=streamed, headers=headers(signature, body, declared=declared)
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_envelope(response, 401, "invalid_signature")
    assert streamed.sent_all  # refused once the whole body was read, not mid-stream
    # The decoded value went to a temporary file as it came in...
    assert streamed.largest_spool > len(body) // 2
    # ...and at no point was the body, or a decoded copy of it, in memory. The peak holds the
    # first MiB read, the spool's MiB in memory and whatever the app's other tasks allocated
    # meanwhile (1.5-2.4 MB measured); a copy of the body or its decoded value is over 7 MB.
    assert peak < len(body) // 3, f"{peak:,} bytes allocated at the peak"
    assert set(spool_files()) <= streamed.before  # the file is closed (and so gone)
    async with app.state.services.session_factory() as s:
        assert (await s.scalars(select(WebhookEvent))).all() == []


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_signed_large_body_is_accepted_and_processed_byte_exact(
    client: httpx.AsyncClient, app: FastAPI, declared: bool
) -> None:
    attachment = os.urandom(2 * MIB)
    event, raw = large_event(attachment, f"signed large {declared}")
    body, signature = mandrill_form([event])
    assert len(body) > STREAM_THRESHOLD_BYTES
    # What the small path makes of the same body: the event it would store.
    [small_path] = classify_batch(decode_events(parse_form(body)))
    streamed = Streamed(body)
    response = await client.post(
        WEBHOOK_PATH, content=streamed, headers=headers(signature, body, declared=declared)
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 1, "duplicates": 0}
    assert streamed.largest_spool > SPOOL_MEMORY_BYTES  # it did take the spooled path
    assert set(spool_files()) <= streamed.before
    assert await wait_settled(app, 1) == {"processed": 1}
    store = app.state.services.blob_store
    async with app.state.services.session_factory() as s:
        stored = (await s.scalars(select(WebhookEvent))).one()
        email = (await s.scalars(select(Email))).one()
        [attached] = (await s.scalars(select(Attachment))).all()
    assert (stored.dedupe_key, stored.payload) == (small_path.dedupe_key, small_path.payload)
    assert email.raw_blob_key is not None
    assert await store.get(email.raw_blob_key) == raw
    assert attached.sha256 == hashlib.sha256(attachment).hexdigest()
    assert await store.get(attached.blob_key) == attachment


@pytest.mark.parametrize("settings_overrides", [{"max_body_bytes": 3 * MIB}])
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_large_body_over_the_limit_is_413_and_leaves_no_spool(
    client: httpx.AsyncClient, settings: Settings, declared: bool
) -> None:
    event, _ = large_event(os.urandom(2 * MIB), "too large")
    body, signature = mandrill_form([event])
    assert len(body) > settings.max_body_bytes
    streamed = Streamed(body)
    response = await client.post(
        WEBHOOK_PATH, content=streamed, headers=headers(signature, body, declared=declared)
    )
    error = assert_envelope(response, 413, "payload_too_large")
    assert str(settings.max_body_bytes) in error["message"]
    assert set(spool_files()) <= streamed.before


async def test_large_body_with_too_many_fields_is_read_to_its_end_then_401(
    client: httpx.AsyncClient,
) -> None:
    body = b"&".join([b"mandrill_events=" + b"x" * (STREAM_THRESHOLD_BYTES // 50)] * 101)
    streamed = Streamed(body)
    response = await client.post(
        WEBHOOK_PATH, content=streamed, headers=headers("c2lnbmF0dXJl", body, declared=False)
    )
    error = assert_envelope(response, 401, "invalid_signature")
    assert "too many fields" in error["message"]
    assert streamed.sent_all


async def test_setup_check_sent_chunked_is_still_accepted(client: httpx.AsyncClient) -> None:
    # Without a Content-Length a body is read as a stream; a small one is parsed as ever.
    body, signature = mandrill_form([], key="test-webhook")
    response = await client.post(
        WEBHOOK_PATH, content=Streamed(body), headers=headers(signature, body, declared=False)
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 0, "duplicates": 0}


class Held:
    """A large body whose sender stops after `first_bytes` until `release` is set."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.first_bytes = CHUNK  # sent before it stops
        self.read_first = asyncio.Event()  # the server asked for more than those
        self.release = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, self.first_bytes, CHUNK):
            yield self.body[start : min(start + CHUNK, self.first_bytes)]
        self.read_first.set()
        await self.release.wait()
        for start in range(self.first_bytes, len(self.body), CHUNK):
            yield self.body[start : start + CHUNK]


@pytest.mark.parametrize(
    "settings_overrides", [{"large_bodies_at_once": 1, "large_body_wait_seconds": 0.2}]
)
async def test_large_bodies_beyond_the_limit_wait_then_get_503_and_small_ones_go_on(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    first, first_signature = mandrill_form([large_event(os.urandom(2 * MIB), "held")[0]])
    held = Held(first)
    sending = asyncio.create_task(
        client.post(
            WEBHOOK_PATH, content=held, headers=headers(first_signature, first, declared=False)
        )
    )
    await asyncio.wait_for(held.read_first.wait(), 10)  # it has the one turn, mid-body

    # Another large body, unsigned or not: not read at all, told to retry (Mailchimp does).
    other, other_signature = mandrill_form([large_event(os.urandom(2 * MIB), "second")[0]])
    waiting = Streamed(other)
    busy = await client.post(
        WEBHOOK_PATH, content=waiting, headers=headers(other_signature, other, declared=True)
    )
    error = assert_envelope(busy, 503, "large_bodies_busy")
    assert "retry later" in error["message"]
    assert busy.headers["Retry-After"] == "5"
    assert waiting.largest_spool == 0 and not waiting.sent_all
    # A small batch is not held up by them.
    small, small_signature = mandrill_form([inbound_event(build_message(subject="small"))])
    answer = await client.post(
        WEBHOOK_PATH, content=small, headers=headers(small_signature, small, declared=True)
    )
    assert answer.json() == {"accepted": 1, "duplicates": 0}

    held.release.set()
    done = await asyncio.wait_for(sending, 30)
    assert done.json() == {"accepted": 1, "duplicates": 0}
    # The turn was given back: Mailchimp's retry of the refused body is taken.
    retried = await client.post(
        WEBHOOK_PATH,
        content=Streamed(other),
        headers=headers(other_signature, other, declared=True),
    )
    assert retried.json() == {"accepted": 1, "duplicates": 0}
    assert await wait_settled(app, 3) == {"processed": 3}


@pytest.mark.parametrize(
    "settings_overrides", [{"large_bodies_at_once": 1, "large_body_read_seconds": 0.5}]
)
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_large_body_trickled_in_is_cut_off_and_frees_its_turn(
    client: httpx.AsyncClient, app: FastAPI, declared: bool
) -> None:
    # Most of the body arrives (past the spool's memory), then the sender stops sending.
    body, signature = mandrill_form([large_event(os.urandom(3 * MIB), "trickled")[0]])
    stalled = Held(body)
    stalled.first_bytes = 2 * MIB
    before = set(spool_files())
    answer = await client.post(
        WEBHOOK_PATH, content=stalled, headers=headers(signature, body, declared=declared)
    )
    error = assert_envelope(answer, 408, "request_timeout")
    assert "LARGE_BODY_READ_SECONDS" in error["message"]
    assert answer.headers["Connection"] == "close"
    assert set(spool_files()) <= before  # its spool file is closed, so gone
    async with app.state.services.session_factory() as s:
        assert (await s.scalars(select(WebhookEvent))).all() == []
    # The one turn is free again: the batch sent again in full is taken.
    again = await client.post(
        WEBHOOK_PATH, content=Streamed(body), headers=headers(signature, body, declared=declared)
    )
    assert again.json() == {"accepted": 1, "duplicates": 0}
