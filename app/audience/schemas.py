from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AudienceEventOut(BaseModel):
    """One Mailchimp audience event as Kave recorded it; `data` is the whole `data[...]` form."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event_id: uuid.UUID | None
    type: str
    fired_at_raw: str | None
    fired_at: datetime | None
    list_id: str | None
    email: str | None
    campaign_id: str | None
    data: dict[str, Any]
    created_at: datetime


class AudienceEventPage(BaseModel):
    items: list[AudienceEventOut]
    next_cursor: str | None
