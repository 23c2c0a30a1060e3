"""Turn the `msg` of a Mandrill inbound event into a ParsedEmail. Pure: no HTTP, no SQL.

`raw_msg`, when present, is the source of truth and is parsed with the standard library's
`email` package (default policy); the JSON fields are only a fallback for events without it.
Mandrill's own metadata (envelope recipient, spam report, SPF, DKIM, tags) always comes from
the JSON. Apart from UnparseableMessage for a `msg` that describes no message, nothing here
raises: a malformed header or part costs that header or part, never the message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from app.mail import fields, mime
from app.mail.errors import UnparseableMessage
from app.mail.filenames import sanitize_filename
from app.mail.headers import MAX_ADDRESS_CHARS, MAX_HEADER_CHARS
from app.mail.parsed import (
    Address,
    BodyParts,
    HeaderFields,
    ParsedAttachment,
    ParsedEmail,
)
from app.mail.text import PARSE_ERRORS, bounded, clean_text, encode_text, normalize_message_id

__all__ = [
    "Address",
    "ParsedAttachment",
    "ParsedEmail",
    "extract_message_id",
    "parse_inbound",
    "raw_message_bytes",
    "sanitize_filename",
]

# A header block is a few KB; looking no further bounds the work on a hostile raw_msg.
_HEADER_BLOCK_CHARS = 256 * 1024
_BLANK_LINE = re.compile(r"\r?\n\r?\n")
# Width of the spf_result column; SPF results are words like "pass" or "softfail".
_MAX_SPF_RESULT_CHARS = 64


def parse_inbound(msg: object, *, consume: bool = False) -> ParsedEmail:
    """Raises UnparseableMessage when `msg` is not an object, when its raw_msg is not a
    string, or when it has neither a raw_msg nor any field to build a message from.

    With `consume`, `raw_msg` is taken out of `msg` once it is read (`ParsedEmail.raw` holds
    the bytes), so a large message's text is not held through the parse."""
    if not isinstance(msg, dict):
        raise UnparseableMessage("the inbound event's msg is not a JSON object")
    raw_msg = msg.get("raw_msg")
    if raw_msg is not None and not isinstance(raw_msg, str):
        raise UnparseableMessage("the inbound event's raw_msg is not a string")
    # Blank counts as missing: some senders' fixtures carry `raw_msg: ""`.
    raw = raw_message_bytes(raw_msg) if raw_msg and not raw_msg.isspace() else None
    if consume and raw is not None:
        msg.pop("raw_msg", None)
        del raw_msg
    if raw is not None:
        header, body = _read_raw(raw, msg)
    elif fields.has_content(msg):
        header, body = fields.read_headers(msg), fields.read_body(msg)
    else:
        raise UnparseableMessage("the inbound event has no raw_msg and no message fields")
    spam = _mapping(msg.get("spam_report"))
    spf = _mapping(msg.get("spf"))
    dkim = _mapping(msg.get("dkim"))
    rules = spam.get("matched_rules")
    tags = msg.get("tags")
    return ParsedEmail(
        message_id=header.message_id,
        subject=header.subject,
        from_address=header.from_address,
        from_name=header.from_name,
        to=header.to,
        cc=header.cc,
        reply_to=header.reply_to,
        sent_at=header.sent_at,
        in_reply_to=header.in_reply_to,
        references=header.references,
        headers=header.headers,
        text_body=body.text_body,
        html_body=body.html_body,
        attachments=body.attachments,
        raw=raw,
        envelope_recipient=_text(msg.get("email"), MAX_ADDRESS_CHARS),
        spam_score=_number(spam.get("score")),
        spam_rules=[
            {
                "name": _text(rule.get("name"), MAX_ADDRESS_CHARS),
                "score": _number(rule.get("score")),
                "description": _text(rule.get("description"), MAX_HEADER_CHARS),
            }
            for rule in (rules if isinstance(rules, list) else [])
            if isinstance(rule, Mapping)
        ],
        spf_result=_text(spf.get("result"), _MAX_SPF_RESULT_CHARS),
        spf_detail=_text(spf.get("detail"), MAX_HEADER_CHARS),
        dkim_signed=_bool_or_none(dkim.get("signed")),
        dkim_valid=_bool_or_none(dkim.get("valid")),
        tags=[
            tag
            for tag in (
                _text(t, MAX_ADDRESS_CHARS) for t in (tags if isinstance(tags, list) else [])
            )
            if tag
        ],
        dkim_domains=header.dkim_domains,
        authentication_results=header.authentication_results,
    )


def extract_message_id(msg: Mapping[str, Any]) -> str | None:
    """The Message-ID (without <>), cheaply, for deduplication before the webhook answers:
    from the `headers` field, else from the header block of raw_msg (the body is not read)."""
    if not isinstance(msg, Mapping):
        return None
    values = fields.json_headers(msg.get("headers")).get("message-id")
    ident = normalize_message_id(values[0]) if values else None
    raw = msg.get("raw_msg")
    if ident is None and isinstance(raw, str) and raw:
        line = _message_id_line(raw)
        ident = normalize_message_id(line) if line else None
    return ident


def raw_message_bytes(raw_msg: str) -> bytes:
    """The RFC 822 bytes of a raw_msg string (see `encode_text` for the surrogate handling)."""
    return encode_text(raw_msg)


def _read_raw(raw: bytes, msg: Mapping[str, Any]) -> tuple[HeaderFields, BodyParts]:
    try:
        root = mime.parse_message(raw)
        return mime.read_headers(root), mime.read_body(root, raw)
    except PARSE_ERRORS:
        # A message nested deeper than the stdlib parser recurses (RecursionError), or built
        # to take minutes to parse (ValueError). Mandrill's own reading of it, in the JSON
        # fields, is then the best there is; the raw bytes are still kept.
        return fields.read_headers(msg), fields.read_body(msg)


def _message_id_line(raw: str) -> str | None:
    """The Message-ID value in the header block of `raw`, unfolded; the body is never split."""
    end = _BLANK_LINE.search(raw, 0, _HEADER_BLOCK_CHARS)
    block = raw[: end.start() if end else _HEADER_BLOCK_CHARS]
    value: str | None = None
    for line in block.split("\n"):
        line = line.rstrip("\r")
        if value is not None:
            if not line.startswith((" ", "\t")):
                break
            value += line
            continue
        if not line:
            break
        name, colon, rest = line.partition(":")
        if colon and name.strip().lower() == "message-id":
            value = rest
    return value


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    return bounded(clean_text(value).strip(), limit) or None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    # JSON allows no NaN or Infinity, but Python's decoder accepts them: never store them.
    return number if math.isfinite(number) else None


def _bool_or_none(value: object) -> bool | None:
    return value if isinstance(value, bool) else None
