"""What parsing an inbound message produces: plain data, free of HTTP, SQL and the email package.

Import these from `app.mail.parser`, which re-exports them; they live here so that the MIME and
JSON halves of the parser can build them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Address:
    email: str
    name: str | None


@dataclass(frozen=True, slots=True)
class ParsedAttachment:
    filename: str  # sanitised, never empty
    content_type: str  # lower-case "type/subtype"
    content: bytes  # decoded bytes
    content_id: str | None  # without <>; only for inline parts
    inline: bool
    # For a file found inside a forwarded message or a winmail.dat: the index (in the
    # attachment list) of the attachment it came out of, and that message's subject and sender.
    parent: int | None = None
    source_subject: str | None = None
    source_from: str | None = None


@dataclass(slots=True)
class ParsedEmail:
    message_id: str | None  # without <>
    subject: str | None
    from_address: str | None
    from_name: str | None
    to: list[Address]
    cc: list[Address]
    reply_to: list[Address]
    sent_at: datetime | None  # the Date header in UTC; None when missing or unparseable
    in_reply_to: str | None
    references: list[str]  # message ids without <>
    headers: dict[str, str]  # the headers of note that are present, decoded
    text_body: str | None
    html_body: str | None
    attachments: list[ParsedAttachment]
    raw: bytes | None  # the RFC 822 source when raw_msg was present and non-empty
    envelope_recipient: str | None
    spam_score: float | None
    spam_rules: list[dict[str, Any]]  # each {name, score, description}
    spf_result: str | None
    spf_detail: str | None
    dkim_signed: bool | None
    dkim_valid: bool | None
    tags: list[str]
    dkim_domains: list[str] = field(default_factory=list)  # d= of each DKIM-Signature
    authentication_results: list[str] = field(default_factory=list)  # values, topmost first


@dataclass(slots=True)
class HeaderFields:
    """The part of a ParsedEmail read from the header (raw message) or the JSON fields."""

    message_id: str | None = None
    subject: str | None = None
    from_address: str | None = None
    from_name: str | None = None
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    reply_to: list[Address] = field(default_factory=list)
    sent_at: datetime | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    dkim_domains: list[str] = field(default_factory=list)
    authentication_results: list[str] = field(default_factory=list)


@dataclass(slots=True)
class BodyParts:
    """The part of a ParsedEmail read from the body (MIME tree) or the JSON fields."""

    text_body: str | None = None
    html_body: str | None = None
    attachments: list[ParsedAttachment] = field(default_factory=list)
