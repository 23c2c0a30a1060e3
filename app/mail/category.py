"""What kind of message this is, for an application that must not answer machines.

`auto_reply` (out-of-office and other automatic answers), `bounce` (a delivery status
notification, with the failed recipient and status when the report gives them), `bulk`
(mailing lists and newsletters) or `normal`. Answering the first two makes mail loops; the
third rarely wants an answer. Decided from the header and, for bounces, the report part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from app.mail.parsed import ParsedEmail
from app.mail.text import bounded, clean_text, decode_bytes


class Category(StrEnum):
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    BULK = "bulk"
    NORMAL = "normal"


@dataclass(frozen=True, slots=True)
class Classification:
    category: Category
    bounce_recipient: str | None = None
    bounce_status: str | None = None  # the RFC 3463 status, e.g. "5.1.1"
    bounce_action: str | None = None  # failed, delayed, ...
    bounce_diagnostic: str | None = None


_DAEMON_LOCALS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon")
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery status notification|delivery failure|"
    r"returned mail|mail delivery failed|failure notice|nondeliverable|non-delivery|"
    r"unzustellbar|non remis|no entregado",
    re.IGNORECASE,
)
_REPORT_TYPE = re.compile(r"report-type\s*=\s*\"?delivery-status", re.IGNORECASE)
_STATUS_IN_TEXT = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_ADDRESS_IN_TEXT = re.compile(r"<?([A-Za-z0-9._%+'=-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})>?")
_REPORT_TYPES = ("message/delivery-status", "message/global-delivery-status")
_MAX_REPORT_CHARS = 64 * 1024
_MAX_FIELD_CHARS = 998


def classify(parsed: ParsedEmail) -> Classification:
    headers = {name.lower(): value for name, value in parsed.headers.items()}
    bounce = _bounce(parsed, headers)
    if bounce is not None:
        return bounce
    if _is_auto_reply(headers):
        return Classification(Category.AUTO_REPLY)
    precedence = headers.get("precedence", "").strip().lower()
    if "list-id" in headers or "list-unsubscribe" in headers:
        return Classification(Category.BULK)
    if precedence in ("bulk", "list", "junk"):
        return Classification(Category.BULK)
    return Classification(Category.NORMAL)


def _is_auto_reply(headers: dict[str, str]) -> bool:
    auto_submitted = headers.get("auto-submitted", "").strip().lower()
    if auto_submitted and auto_submitted.split(";")[0].strip() != "no":
        return True
    if "x-autoreply" in headers or "x-autorespond" in headers:
        return True
    return headers.get("precedence", "").strip().lower() == "auto_reply"


def _bounce(parsed: ParsedEmail, headers: dict[str, str]) -> Classification | None:
    is_report = bool(_REPORT_TYPE.search(headers.get("content-type", "")))
    sender = (parsed.from_address or "").lower()
    from_daemon = sender.partition("@")[0] in _DAEMON_LOCALS
    subject = parsed.subject or ""
    daemon_notice = from_daemon and (
        _BOUNCE_SUBJECT.search(subject) is not None or "x-failed-recipients" in headers
    )
    if not is_report and not daemon_notice:
        return None
    fields = _delivery_status(parsed)
    recipient = _address(fields.get("final-recipient") or fields.get("original-recipient"))
    if recipient is None and "x-failed-recipients" in headers:
        recipient = _address(headers["x-failed-recipients"].split(",")[0])
    status = _token(fields.get("status"))
    if status is None or recipient is None:
        text = bounded(parsed.text_body or "", _MAX_REPORT_CHARS)
        if status is None:
            found = _STATUS_IN_TEXT.search(text)
            status = found.group(1) if found else None
        if recipient is None:
            recipient = _recipient_in_text(text, sender)
    return Classification(
        Category.BOUNCE,
        bounce_recipient=recipient,
        bounce_status=status,
        bounce_action=_token(fields.get("action")),
        bounce_diagnostic=_field(fields.get("diagnostic-code")),
    )


def _delivery_status(parsed: ParsedEmail) -> dict[str, str]:
    """The first per-recipient block of the message/delivery-status part (RFC 3464), with the
    per-message fields under it: lower-cased name -> value."""
    for attachment in parsed.attachments:
        if attachment.content_type not in _REPORT_TYPES:
            continue
        text = decode_bytes(attachment.content[:_MAX_REPORT_CHARS], "utf-8")
        fields: dict[str, str] = {}
        blocks = re.split(r"\r?\n[ \t]*\r?\n", text.strip())
        for block in blocks:
            current: str | None = None
            for line in block.splitlines():
                if line[:1] in (" ", "\t") and current:
                    fields[current] += " " + line.strip()
                    continue
                name, colon, value = line.partition(":")
                if colon:
                    current = name.strip().lower()
                    fields.setdefault(current, value.strip())
            if "final-recipient" in fields or "original-recipient" in fields:
                return fields
        return fields
    return {}


def _address(value: str | None) -> str | None:
    """`rfc822; bob@example.com` -> `bob@example.com`."""
    if not value:
        return None
    value = value.partition(";")[2] if ";" in value else value
    found = _ADDRESS_IN_TEXT.search(value)
    return found.group(1)[:_MAX_FIELD_CHARS] if found else None


def _recipient_in_text(text: str, sender: str) -> str | None:
    for found in _ADDRESS_IN_TEXT.finditer(text):
        address = found.group(1)
        if address.lower() != sender and address.partition("@")[0].lower() not in _DAEMON_LOCALS:
            return address[:_MAX_FIELD_CHARS]
    return None


def _field(value: str | None) -> str | None:
    return bounded(clean_text(value).strip(), _MAX_FIELD_CHARS) or None if value else None


def _token(value: str | None) -> str | None:
    """The first word: "5.1.1 (bad destination mailbox)" -> "5.1.1"."""
    field = _field(value)
    return bounded(field.split()[0], 64) if field else None
