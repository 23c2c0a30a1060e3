"""The message as Mandrill's JSON fields describe it, for events whose raw_msg is missing.

Every field may be missing, null or of the wrong type; whatever is unusable is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from app.mail.filenames import fallback_filename, sanitize_filename
from app.mail.headers import MAX_HEADER_CHARS, address_list, collect, header_fields
from app.mail.parsed import Address, BodyParts, HeaderFields, ParsedAttachment
from app.mail.text import (
    bounded,
    clean_text,
    encode_text,
    lenient_b64decode,
    normalize_content_type,
    normalize_message_id,
)

_CONTENT_KEYS = ("subject", "from_email", "text", "html", "to", "cc", "headers")
_ATTACHMENT_KEYS = ("attachments", "images")


def has_content(msg: Mapping[str, Any]) -> bool:
    """Whether the JSON fields describe any message at all."""
    return any(msg.get(key) for key in _CONTENT_KEYS + _ATTACHMENT_KEYS)


def json_headers(value: object) -> dict[str, list[str]]:
    """Mandrill's `headers`: name -> a value, or a list of values for a repeated header;
    `[]` when a message has none."""
    return collect(value.items()) if isinstance(value, Mapping) else {}


def read_headers(msg: Mapping[str, Any]) -> HeaderFields:
    header = header_fields(json_headers(msg.get("headers")))
    # Mandrill's own fields, where present, are what it read from the message: they win.
    subject = msg.get("subject")
    if isinstance(subject, str):
        header.subject = bounded(clean_text(subject).strip(), MAX_HEADER_CHARS)
    from_email = msg.get("from_email")
    senders = address_list([(msg.get("from_name"), from_email)])
    if senders:
        header.from_address, header.from_name = senders[0].email, senders[0].name
    to, cc = msg.get("to"), msg.get("cc")
    if isinstance(to, list):
        header.to = _recipients(to)
    if isinstance(cc, list):
        header.cc = _recipients(cc)
    return header


def read_body(msg: Mapping[str, Any]) -> BodyParts:
    text, html = msg.get("text"), msg.get("html")
    body = BodyParts(
        text_body=clean_text(text) if isinstance(text, str) else None,
        html_body=clean_text(html) if isinstance(html, str) else None,
    )
    for key in _ATTACHMENT_KEYS:
        for name, entry in _entries(msg.get(key)):
            attachment = _attachment(
                name, entry, images=key == "images", number=len(body.attachments) + 1
            )
            if attachment is not None:
                body.attachments.append(attachment)
    return body


def _entries(value: object) -> Iterator[tuple[str | None, object]]:
    if isinstance(value, Mapping):
        for key, entry in value.items():
            yield (key if isinstance(key, str) else None), entry
    elif isinstance(value, list):
        for entry in value:
            yield None, entry


def _attachment(
    key: str | None, entry: object, *, images: bool, number: int
) -> ParsedAttachment | None:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("content"), str):
        return None
    content: str = entry["content"]
    name = entry.get("name") if isinstance(entry.get("name"), str) else key
    ctype = normalize_content_type(entry.get("type")) or "application/octet-stream"
    # Images are always base64 and carry no flag; attachments say whether they are.
    encoded = images or _flag(entry.get("base64"))
    data = lenient_b64decode(content) if encoded else encode_text(content)
    return ParsedAttachment(
        filename=sanitize_filename(
            name, fallback=fallback_filename("inline" if images else "attachment", number, ctype)
        ),
        content_type=ctype,
        content=data,
        # Mandrill names an inline image by its Content-ID, which is what the HTML refers to.
        content_id=normalize_message_id(name) if images and name else None,
        inline=images,
    )


def _flag(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return value is True or (isinstance(value, int | float) and value == 1)


def _recipients(value: list[Any]) -> list[Address]:
    pairs: list[tuple[object, object]] = []
    for item in value:
        if isinstance(item, str):
            pairs.append((None, item))
        elif isinstance(item, list | tuple) and item:
            pairs.append((item[1] if len(item) > 1 else None, item[0]))
        elif isinstance(item, Mapping):
            pairs.append((item.get("name"), item.get("email")))
    return address_list(pairs)
