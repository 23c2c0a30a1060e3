"""Mailchimp Marketing (audience) events, one row per processed event."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    String,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, JSONType, UTCDateTime, utcnow


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
