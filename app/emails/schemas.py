"""Response bodies of the email and attachment routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from app.core.params import API_PREFIX
from app.emails.models import Attachment, Email

EMAIL_ID_EXAMPLE = "0b9d7e38-5f0e-4bb6-9c1c-2f7d1c1e8a41"
ATTACHMENT_ID_EXAMPLE = "6c2f4a8e-1d3b-4e7a-9f0c-5b8d2e1a7c93"


class Address(BaseModel):
    email: str
    name: str | None = None


def _address(value: Any) -> Address | None:
    if isinstance(value, dict) and isinstance(value.get("email"), str):
        return Address(email=value["email"], name=value.get("name"))
    return None


def _addresses(values: list[Any] | None) -> list[Address]:
    return [a for a in (_address(v) for v in values or []) if a is not None]


def _sender(email: Email) -> Address | None:
    if email.from_address is None:
        return None
    return Address(email=email.from_address, name=email.from_name)


ADDRESS_EXAMPLE: dict[str, Any] = {"email": "alice@example.org", "name": "Alice Example"}
INBOX_EXAMPLE: dict[str, Any] = {"email": "inbox@kave.example.com", "name": None}
LIST_ITEM_EXAMPLE: dict[str, Any] = {
    "id": EMAIL_ID_EXAMPLE,
    "message_id": "170.42@example.org",
    "subject": "Invoice November",
    "from": ADDRESS_EXAMPLE,
    "to": [INBOX_EXAMPLE],
    "envelope_recipient": "inbox@kave.example.com",
    "received_at": "2026-11-21T10:15:02.123456Z",
    "attachment_count": 1,
    "thread_id": "3f1e2d4c-5b6a-4798-8a1b-2c3d4e5f6a7b",
    "category": "normal",
    "sender_authenticated": True,
}
ATTACHMENT_EXAMPLE: dict[str, Any] = {
    "id": ATTACHMENT_ID_EXAMPLE,
    "email_id": EMAIL_ID_EXAMPLE,
    "position": 0,
    "filename": "invoice-2026-11.pdf",
    "content_type": "application/pdf",
    "size": 48213,
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "content_id": None,
    "inline": False,
    "created_at": "2026-11-21T10:15:03Z",
    "parent_id": None,
    "source_subject": None,
    "source_from": None,
    "content_url": f"{API_PREFIX}/attachments/{ATTACHMENT_ID_EXAMPLE}/content",
}
CATEGORY_DESCRIPTION = (
    "`auto_reply` (out-of-office and other automatic answers), `bounce` (a delivery status "
    "notification), `bulk` (mailing lists, newsletters) or `normal`; null for mail stored "
    "before Kave computed it (run `python -m app.cli recompute-fields`)"
)
SENDER_AUTHENTICATED_DESCRIPTION = (
    "true: a valid DKIM signature (or an SPF pass) for From's domain or a parent of it; "
    "false: the evidence contradicts the From domain (valid DKIM for another domain only, "
    "SPF fail); null: no evidence"
)


class EmailListItem(BaseModel):
    model_config = ConfigDict(
        validate_by_name=True, json_schema_extra={"examples": [LIST_ITEM_EXAMPLE]}
    )

    id: uuid.UUID
    message_id: str | None
    subject: str | None
    from_: Address | None = Field(alias="from")
    to: list[Address]
    envelope_recipient: str | None = Field(
        description="The address Kave received this copy on: one email per receiving address"
    )
    received_at: datetime
    attachment_count: int
    thread_id: uuid.UUID | None = Field(description="The conversation: GET /threads/{id}")
    category: str | None = Field(description=CATEGORY_DESCRIPTION)
    sender_authenticated: bool | None = Field(description=SENDER_AUTHENTICATED_DESCRIPTION)

    @classmethod
    def of(cls, email: Email, attachment_count: int, thread_id: uuid.UUID | None) -> EmailListItem:
        return cls(
            id=email.id,
            message_id=email.message_id,
            subject=email.subject,
            from_=_sender(email),
            to=_addresses(email.to),
            envelope_recipient=email.envelope_recipient,
            received_at=email.received_at,
            attachment_count=attachment_count,
            thread_id=thread_id,
            category=email.category,
            sender_authenticated=email.sender_authenticated,
        )


class EmailPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [LIST_ITEM_EXAMPLE], "next_cursor": "WyJlbWFpbHMiLCIyMDI2..."}]
        }
    )

    items: list[EmailListItem]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )


class AttachmentOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [ATTACHMENT_EXAMPLE]}
    )

    id: uuid.UUID
    email_id: uuid.UUID
    position: int
    filename: str
    content_type: str
    size: int
    sha256: str
    content_id: str | None
    inline: bool
    created_at: datetime
    parent_id: uuid.UUID | None = Field(
        description="For a file found inside a forwarded message (.eml) or a winmail.dat: "
        "the attachment it came out of"
    )
    source_subject: str | None = Field(
        description="Subject of the forwarded message that carried the file"
    )
    source_from: str | None = Field(description="Sender of the forwarded message")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def content_url(self) -> str:
        """Where the bytes are served."""
        return f"{API_PREFIX}/attachments/{self.id}/content"

    @classmethod
    def of(cls, attachment: Attachment) -> AttachmentOut:
        return cls.model_validate(attachment)


class SpamReport(BaseModel):
    score: float | None
    rules: list[dict[str, Any]]


class SpfResult(BaseModel):
    result: str | None
    detail: str | None


class DkimResult(BaseModel):
    signed: bool | None
    valid: bool | None


class Bounce(BaseModel):
    recipient: str | None = Field(description="The address that could not be delivered to")
    status: str | None = Field(description="RFC 3463 status, e.g. `5.1.1`")
    action: str | None = Field(description="`failed`, `delayed`, ...")
    diagnostic: str | None


class EmailDetail(BaseModel):
    model_config = ConfigDict(
        validate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "id": EMAIL_ID_EXAMPLE,
                    "event_id": "d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6",
                    "message_id": "170.42@example.org",
                    "subject": "Invoice November",
                    "from": ADDRESS_EXAMPLE,
                    "to": [INBOX_EXAMPLE],
                    "cc": [],
                    "reply_to": [],
                    "envelope_recipient": "inbox@kave.example.com",
                    "sent_at": "2026-11-21T10:14:58Z",
                    "received_at": "2026-11-21T10:15:02.123456Z",
                    "in_reply_to": None,
                    "references": [],
                    "headers": {"Message-ID": "<170.42@example.org>", "X-Mailer": "Mutt"},
                    "text_body": "Please find the invoice attached.",
                    "html_body": "<p>Please find the invoice attached.</p>",
                    "spam": {"score": 1.5, "rules": [{"name": "HTML_MESSAGE", "score": 0.1}]},
                    "spf": {"result": "pass", "detail": "sender SPF authorized"},
                    "dkim": {"signed": True, "valid": True},
                    "tags": [],
                    "raw_available": True,
                    "raw_size": 68211,
                    "raw_sha256": "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e8862"
                    "66e7ae",
                    "attachments": [ATTACHMENT_EXAMPLE],
                    "reply_text": "Thursday works for me.",
                    "thread_id": "3f1e2d4c-5b6a-4798-8a1b-2c3d4e5f6a7b",
                    "category": "normal",
                    "bounce": None,
                    "sender_authenticated": True,
                    "sender_auth_reason": "dkim: valid signature by example.org, aligned "
                    "with example.org",
                    "dmarc": "pass",
                    "authentication_results": [],
                }
            ]
        },
    )

    id: uuid.UUID
    event_id: uuid.UUID | None
    message_id: str | None
    subject: str | None
    from_: Address | None = Field(alias="from")
    to: list[Address]
    cc: list[Address]
    reply_to: list[Address]
    envelope_recipient: str | None
    sent_at: datetime | None
    received_at: datetime
    in_reply_to: str | None
    references: list[str]
    headers: dict[str, Any] = Field(description="The headers of note that were present")
    text_body: str | None
    html_body: str | None
    spam: SpamReport
    spf: SpfResult
    dkim: DkimResult
    tags: list[str]
    raw_available: bool = Field(description="Whether GET /emails/{id}/raw can serve the source")
    raw_size: int
    raw_sha256: str | None
    attachments: list[AttachmentOut]
    reply_text: str | None = Field(
        description="The message's own new words: the text (or the HTML as text) without "
        "quoted history and signature"
    )
    thread_id: uuid.UUID | None = Field(description="The conversation: GET /threads/{id}")
    category: str | None = Field(description=CATEGORY_DESCRIPTION)
    bounce: Bounce | None = Field(description="For a bounce: what the report says")
    sender_authenticated: bool | None = Field(description=SENDER_AUTHENTICATED_DESCRIPTION)
    sender_auth_reason: str | None = Field(description="Why, in a few words")
    dmarc: str | None = Field(
        description="DMARC result of the topmost Authentication-Results header, if any"
    )
    authentication_results: list[dict[str, Any]] = Field(
        description="Authentication-Results headers as parsed, topmost first"
    )

    @classmethod
    def of(
        cls, email: Email, attachments: list[Attachment], thread_id: uuid.UUID | None
    ) -> EmailDetail:
        return cls(
            id=email.id,
            event_id=email.event_id,
            message_id=email.message_id,
            subject=email.subject,
            from_=_sender(email),
            to=_addresses(email.to),
            cc=_addresses(email.cc),
            reply_to=_addresses(email.reply_to),
            envelope_recipient=email.envelope_recipient,
            sent_at=email.sent_at,
            received_at=email.received_at,
            in_reply_to=email.in_reply_to,
            references=list(email.references or []),
            headers=dict(email.headers or {}),
            text_body=email.text_body,
            html_body=email.html_body,
            spam=SpamReport(score=email.spam_score, rules=list(email.spam_rules or [])),
            spf=SpfResult(result=email.spf_result, detail=email.spf_detail),
            dkim=DkimResult(signed=email.dkim_signed, valid=email.dkim_valid),
            tags=list(email.tags or []),
            raw_available=email.raw_blob_key is not None,
            raw_size=email.raw_size,
            raw_sha256=email.raw_sha256,
            attachments=[AttachmentOut.of(a) for a in attachments],
            reply_text=email.reply_text,
            thread_id=thread_id,
            category=email.category,
            bounce=Bounce(
                recipient=email.bounce_recipient,
                status=email.bounce_status,
                action=email.bounce_action,
                diagnostic=email.bounce_diagnostic,
            )
            if email.category == "bounce"
            else None,
            sender_authenticated=email.sender_authenticated,
            sender_auth_reason=email.sender_auth_reason,
            dmarc=email.dmarc_result,
            authentication_results=list(email.authentication_results or []),
        )


class ThreadOut(BaseModel):
    id: uuid.UUID
    email_count: int
    emails: list[EmailListItem] = Field(
        description="Oldest first (by Date, else arrival); at most `limit` of them"
    )
    truncated: bool = Field(description="More emails than `limit`: page with /emails?thread_id=")
