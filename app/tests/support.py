"""Builders shared by the tests: signed Mandrill requests and inbound events."""

from __future__ import annotations

import asyncio
import struct
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from app.mandrill.signature import mandrill_signature

WEBHOOK_URL = "https://kave.example.com/api/v1/webhooks/mailchimp"
WEBHOOK_PATH = "/api/v1/webhooks/mailchimp"
WEBHOOK_KEY = "test-webhook-key-1"


def signed_form(
    events: Sequence[Any] | str, *, key: str = WEBHOOK_KEY, url: str = WEBHOOK_URL
) -> tuple[bytes, dict[str, str]]:
    value = events if isinstance(events, str) else orjson.dumps(list(events)).decode()
    params = [("mandrill_events", value)]
    body = urlencode(params).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Mandrill-Signature": mandrill_signature(key.encode(), url, params),
        "User-Agent": "Mandrill-Webhook/1.0",
    }
    return body, headers


async def post_events(
    client: httpx.AsyncClient, events: Sequence[Any] | str, **kwargs: Any
) -> httpx.Response:
    body, headers = signed_form(events, **kwargs)
    return await client.post(WEBHOOK_PATH, content=body, headers=headers)


def build_message(
    *,
    subject: str = "Hello from a test",
    sender: str = "Alice Example <alice@example.org>",
    to: str = "inbox@kave.example.com",
    text: str = "Plain body",
    html: str | None = "<p>HTML body</p>",
    attachments: Sequence[tuple[str, str, bytes]] = (),
    message_id: str | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = format_datetime(datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    msg["Message-ID"] = message_id or make_msgid(domain="example.org")
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg


def png(width: int, height: int) -> bytes:
    """A real PNG of `width` x `height` red pixels, which a browser decodes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def with_inline_image(message: EmailMessage, image: bytes, content_id: str) -> EmailMessage:
    """`message` (from `build_message`, with an HTML part) with `image` as a related part of
    the HTML, as mail clients send a logo the HTML shows with `cid:`."""
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None, "the message has no HTML part"
    html_part.add_related(image, maintype="image", subtype="png", cid=f"<{content_id}>")
    return message


def inbound_event(message: EmailMessage | None = None, **msg_fields: Any) -> dict[str, Any]:
    message = message or build_message()
    raw = message.as_bytes().decode("utf-8", "surrogateescape")
    msg: dict[str, Any] = {
        "raw_msg": raw,
        "headers": {"Message-Id": message["Message-ID"], "Subject": message["Subject"]},
        "from_email": "alice@example.org",
        "from_name": "Alice Example",
        "to": [["inbox@kave.example.com", None]],
        "email": "inbox@kave.example.com",
        "subject": message["Subject"],
        "tags": [],
        "sender": None,
        "template": None,
        "spam_report": {
            "score": 1.5,
            "matched_rules": [{"name": "HTML_MESSAGE", "score": 0.1, "description": None}],
        },
        "dkim": {"signed": True, "valid": True},
        "spf": {"result": "pass", "detail": "sender SPF authorized"},
    }
    msg.update(msg_fields)
    return {"event": "inbound", "ts": int(time.time()), "msg": msg}


def message_event(
    kind: str = "open", *, message_id: str | None = None, ts: int = 1_700_000_000
) -> dict[str, Any]:
    return {
        "event": kind,
        "_id": message_id or uuid.uuid4().hex,
        "ts": ts,
        "msg": {"state": "sent", "email": "bob@example.org", "subject": "Hi", "metadata": []},
    }


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], *, timeout: float = 20.0, interval: float = 0.05
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await predicate():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)
