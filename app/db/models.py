"""Tables. Every id a client sees is a UUID; every timestamp is aware UTC."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base, JSONType, UTCDateTime, utcnow


class EventStatus(StrEnum):
    RECEIVED = "received"
    PROCESSING = "processing"
    PROCESSED = "processed"
    FAILED = "failed"
    IGNORED = "ignored"


class EventKind(StrEnum):
    INBOUND = "inbound"
    MESSAGE = "message"
    SYNC = "sync"
    AUDIENCE = "audience"
    INVALID = "invalid"


def _in_check(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class WebhookEvent(Base):
    """One event as received, stored before the webhook is acknowledged."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        CheckConstraint(_in_check("status", EventStatus), name="status"),
        CheckConstraint(_in_check("kind", EventKind), name="kind"),
        Index("ix_webhook_events_due", "status", "next_attempt_at"),
        Index("ix_webhook_events_received", "received_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(16))
    event_type: Mapped[str] = mapped_column(String(64))
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    message_key: Mapped[str | None] = mapped_column(String(512), index=True)
    payload: Mapped[str | None] = mapped_column(Text)
    payload_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default=EventStatus.RECEIVED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    processing_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    payload_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Email(Base):
    __tablename__ = "emails"
    __table_args__ = (Index("ix_emails_received", "received_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    event_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("webhook_events.id", ondelete="SET NULL"), unique=True
    )
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    raw_sha256: Mapped[str | None] = mapped_column(String(64))
    raw_blob_key: Mapped[str | None] = mapped_column(String(256))
    raw_size: Mapped[int] = mapped_column(BigInteger, default=0)
    subject: Mapped[str | None] = mapped_column(Text)
    from_address: Mapped[str | None] = mapped_column(String(998), index=True)
    from_name: Mapped[str | None] = mapped_column(Text)
    to: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    cc: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    reply_to: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    recipients_text: Mapped[str] = mapped_column(Text, default="")
    envelope_recipient: Mapped[str | None] = mapped_column(String(998))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    in_reply_to: Mapped[str | None] = mapped_column(Text)
    references: Mapped[list[str]] = mapped_column(JSONType, default=list)
    headers: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    text_body: Mapped[str | None] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    spam_score: Mapped[float | None] = mapped_column(Float)
    spam_rules: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    spf_result: Mapped[str | None] = mapped_column(String(64))
    spf_detail: Mapped[str | None] = mapped_column(Text)
    dkim_signed: Mapped[bool | None] = mapped_column(Boolean)
    dkim_valid: Mapped[bool | None] = mapped_column(Boolean)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="email",
        lazy="raise",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Attachment.position",
    )


class Attachment(Base):
    __tablename__ = "attachments"
    __table_args__ = (UniqueConstraint("email_id", "position"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("emails.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    blob_key: Mapped[str] = mapped_column(String(256), index=True)
    content_id: Mapped[str | None] = mapped_column(String(998))
    inline: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    email: Mapped[Email] = relationship(back_populates="attachments", lazy="raise")


class Delivery(Base):
    """A Mandrill message event (send, open, bounce, ...) or a sync event (blacklist/whitelist)."""

    __tablename__ = "deliveries"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    event_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("webhook_events.id", ondelete="SET NULL"), unique=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    event_type: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(128), index=True)
    recipient: Mapped[str | None] = mapped_column(String(998), index=True)
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    state: Mapped[str | None] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    ip: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AudienceEvent(Base):
    """A Mailchimp Marketing audience webhook (subscribe, unsubscribe, profile, ...)."""

    __tablename__ = "audience_events"
    __table_args__ = (
        Index("ix_audience_events_fired", "fired_at", "id"),
        Index("ix_audience_events_created", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    event_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("webhook_events.id", ondelete="SET NULL"), unique=True
    )
    type: Mapped[str] = mapped_column(String(32), index=True)
    fired_at_raw: Mapped[str | None] = mapped_column(String(64))
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    list_id: Mapped[str | None] = mapped_column(String(64), index=True)
    email: Mapped[str | None] = mapped_column(String(998), index=True)
    campaign_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # Stored lower-cased, so the unique constraint is case-insensitive on every backend.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    hashed_password: Mapped[str] = mapped_column(String(255))
    scopes: Mapped[list[str]] = mapped_column(JSONType, default=list)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Copied into every token (claim `ver`) and raised by a change of password, of the active
    # flag or a widening of the scopes: tokens issued before such a change are refused.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
