"""Received emails and their attachments."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base, JSONType, UTCDateTime, utcnow


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
    # Computed once at processing (and again by `python -m app.cli recompute-fields`).
    reply_text: Mapped[str | None] = mapped_column(Text)
    # Its own key in thread_keys (the Message-ID, or `event:<id>` without one): the thread
    # is read through it, so a merge of threads never has to find this row.
    thread_key: Mapped[str | None] = mapped_column(String(600), index=True)
    category: Mapped[str | None] = mapped_column(String(16), index=True)
    bounce_recipient: Mapped[str | None] = mapped_column(String(998))
    bounce_status: Mapped[str | None] = mapped_column(String(64))
    bounce_action: Mapped[str | None] = mapped_column(String(64))
    bounce_diagnostic: Mapped[str | None] = mapped_column(Text)
    sender_authenticated: Mapped[bool | None] = mapped_column(Boolean)
    sender_auth_reason: Mapped[str | None] = mapped_column(Text)
    dmarc_result: Mapped[str | None] = mapped_column(String(64))
    authentication_results: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Position on the feed, from `FeedCounter` in the processing transaction: strictly
    # increasing in commit order. A replay that changes the email gives it a new one.
    feed_position: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    content_digest: Mapped[str | None] = mapped_column(String(64))

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
    # Set for a file found inside a forwarded message or a winmail.dat: the attachment it
    # came out of, and the subject and sender of the message that carried it.
    parent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    source_subject: Mapped[str | None] = mapped_column(Text)
    source_from: Mapped[str | None] = mapped_column(String(998))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    email: Mapped[Email] = relationship(back_populates="attachments", lazy="raise")


class Thread(Base):
    """A conversation. A thread merged into another keeps its row, pointing at the survivor,
    so an id handed out before the merge still finds the conversation."""

    __tablename__ = "threads"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    merged_into: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ThreadKey(Base):
    """A Message-ID some stored message carries or names, and the thread it belongs to."""

    __tablename__ = "thread_keys"

    key: Mapped[str] = mapped_column(String(600), primary_key=True)
    thread_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)


class FeedCounter(Base):
    """The feed's last position. Incremented in the transaction that stores emails: the row
    lock is held until commit, so positions are handed out in commit order and a consumer
    that has seen position N can never later find a smaller one appear."""

    __tablename__ = "feed_counter"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
