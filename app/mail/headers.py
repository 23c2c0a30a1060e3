"""Header fields from raw header values, whether they come from raw_msg or Mandrill's JSON.

Values are decoded here with linear-time tools (`decode_header`, `getaddresses`,
`parsedate_to_datetime`), never with the default policy's structured header parser: in
CPython 3.11 that parser is quadratic on hostile input (8 KB of `"a` in a To header takes a
second, 40 KB twenty-five), and anyone on the internet can send us a header.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from email.utils import getaddresses

from app.mail.parsed import Address, HeaderFields
from app.mail.text import (
    PARSE_ERRORS,
    bounded,
    clean_text,
    decode_words,
    message_ids,
    normalize_message_id,
    parse_date,
    unfold,
)

# Kept in ParsedEmail.headers when present, under these spellings.
HEADERS_OF_NOTE = (
    "Message-ID",
    "Date",
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Subject",
    "In-Reply-To",
    "References",
    "Return-Path",
    "List-Id",
    "List-Unsubscribe",
    "Auto-Submitted",
    "X-Autoreply",
    "X-Autorespond",
    "X-Auto-Response-Suppress",
    "X-Failed-Recipients",
    "Precedence",
    "X-Mailer",
    "Content-Type",
)
# Real headers of note are far shorter; the bound keeps a hostile one out of the JSON column.
MAX_HEADER_CHARS = 16_384
# The longest line RFC 5322 allows, and the width of the address columns.
MAX_ADDRESS_CHARS = 998
# A message carries a few of each; more are not read (each is a hostile header's chance).
_MAX_AUTH_HEADERS = 20
_DKIM_DOMAIN = re.compile(r"(?:^|;)\s*d\s*=\s*([^;\s]+)")
# About 1,500 recipients; what lies beyond is not read (address lists: To, Cc, References).
_MAX_LIST_HEADER_CHARS = 65_536


def collect(pairs: Iterable[tuple[object, object]]) -> dict[str, list[str]]:
    """Lower-cased name -> every value, in order; a value may be a list of values."""
    found: dict[str, list[str]] = {}
    for name, value in pairs:
        if not isinstance(name, str):
            continue
        values = value if isinstance(value, list) else [value]
        strings = [v for v in values if isinstance(v, str)]
        if strings:
            found.setdefault(name.lower(), []).extend(strings)
    return found


def header_fields(headers: Mapping[str, list[str]]) -> HeaderFields:
    of_note = {
        name: decoded(headers[name.lower()][0], MAX_HEADER_CHARS)
        for name in HEADERS_OF_NOTE
        if name.lower() in headers
    }
    senders = addresses(headers.get("from", []))
    subject = of_note.get("Subject")
    return HeaderFields(
        message_id=_first_id(headers, "message-id"),
        subject=subject.strip() if subject is not None else None,
        from_address=senders[0].email if senders else None,
        from_name=senders[0].name if senders else None,
        to=addresses(headers.get("to", [])),
        cc=addresses(headers.get("cc", [])),
        reply_to=addresses(headers.get("reply-to", [])),
        sent_at=parse_date(bounded(headers["date"][0], MAX_HEADER_CHARS))
        if "date" in headers
        else None,
        in_reply_to=_first_id(headers, "in-reply-to"),
        references=message_ids(bounded(headers["references"][0], _MAX_LIST_HEADER_CHARS))
        if "references" in headers
        else [],
        headers=of_note,
        dkim_domains=dkim_domains(headers.get("dkim-signature", [])),
        authentication_results=[
            decoded(value, MAX_HEADER_CHARS)
            for value in headers.get("authentication-results", [])[:_MAX_AUTH_HEADERS]
        ],
    )


def dkim_domains(values: list[str]) -> list[str]:
    """The signing domain (`d=`) of each DKIM-Signature, lower-cased."""
    found: list[str] = []
    for value in values[:_MAX_AUTH_HEADERS]:
        match = _DKIM_DOMAIN.search(unfold(bounded(value, MAX_HEADER_CHARS)))
        if match:
            found.append(match.group(1).strip().rstrip(".").lower()[:MAX_ADDRESS_CHARS])
    return found


def decoded(value: str, limit: int) -> str:
    """A raw header value unfolded, RFC 2047 words decoded, storable."""
    return bounded(clean_text(decode_words(unfold(bounded(value, limit * 2)))), limit)


def addresses(values: list[str]) -> list[Address]:
    """Every address of every value of an address header (From, To, Cc, ...)."""
    unfolded = [unfold(bounded(value, _MAX_LIST_HEADER_CHARS)) for value in values]
    try:
        pairs = getaddresses(unfolded)
    except PARSE_ERRORS:
        return []
    return address_list((decode_words(name), email) for name, email in pairs)


def address_list(pairs: Iterable[tuple[object, object]]) -> list[Address]:
    """Addresses from (name, email) pairs; pairs without a usable email are skipped."""
    found: list[Address] = []
    for name, email in pairs:
        if not isinstance(email, str):
            continue
        email = clean_text(unfold(email)).strip()[:MAX_ADDRESS_CHARS]
        display = clean_text(unfold(name)).strip() if isinstance(name, str) else ""
        if email:
            found.append(Address(email=email, name=display[:MAX_ADDRESS_CHARS] or None))
    return found


def _first_id(headers: Mapping[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return normalize_message_id(values[0]) if values else None
