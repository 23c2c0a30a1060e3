"""Helpers shared by the mail tests: wrap a message the way Mandrill delivers it, and check
that what the parser returns can be stored (UTF-8 encodable, no NUL)."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC
from email.message import EmailMessage
from typing import Any

from app.mail.parsed import ParsedEmail

CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")


def inbound(message: EmailMessage | bytes | str, **fields: Any) -> dict[str, Any]:
    """The `msg` of an inbound event carrying `message` as raw_msg.

    Bytes become the JSON string through surrogateescape, so non-UTF-8 bytes round-trip.
    """
    if isinstance(message, EmailMessage):
        message = message.as_bytes()
    raw = message.decode("utf-8", "surrogateescape") if isinstance(message, bytes) else message
    return {"raw_msg": raw, **fields}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _storable(value: object, where: str) -> None:
    if isinstance(value, str):
        assert "\x00" not in value, where
        value.encode("utf-8")  # raises on a lone surrogate
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(key, where)
            _storable(item, f"{where}[{key!r}]")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _storable(item, f"{where}[{index}]")


def assert_storable(parsed: ParsedEmail) -> None:
    """Every invariant a caller relies on, whatever the input was."""
    for name in ParsedEmail.__slots__:
        _storable(getattr(parsed, name), name)
    for address in [*parsed.to, *parsed.cc, *parsed.reply_to]:
        assert address.email
        _storable([address.email, address.name], "address")
    for attachment in parsed.attachments:
        _storable([attachment.filename, attachment.content_id], "attachment")
        assert attachment.filename not in ("", ".", "..")
        assert "/" not in attachment.filename and "\\" not in attachment.filename
        assert len(attachment.filename.encode("utf-8")) <= 255
        assert CONTENT_TYPE.fullmatch(attachment.content_type), attachment.content_type
        assert isinstance(attachment.content, bytes)
        assert attachment.content_id is None or attachment.inline
    if parsed.sent_at is not None:
        assert parsed.sent_at.tzinfo is UTC
    assert parsed.message_id is None or 0 < len(parsed.message_id) <= 512
    assert parsed.spam_score is None or isinstance(parsed.spam_score, float)
