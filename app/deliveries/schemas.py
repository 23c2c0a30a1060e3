"""Response bodies of the delivery routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.deliveries.models import Delivery

DELIVERY_EXAMPLE: dict[str, Any] = {
    "id": "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d",
    "event_id": "0f1e2d3c-4b5a-4968-8776-655443322110",
    "kind": "message",
    "event_type": "open",
    "message_id": "5b1a7c0e8f4d4c1a9e2b3c4d5e6f7a8b",
    "recipient": "bob@example.org",
    "occurred_at": "2026-11-21T10:20:00Z",
    "state": "sent",
    "subject": "Your order",
    "url": None,
    "ip": "203.0.113.9",
    "details": {"event": "open", "_id": "5b1a7c0e8f4d4c1a9e2b3c4d5e6f7a8b", "ts": 1795256400},
}


class DeliveryOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [DELIVERY_EXAMPLE]}
    )

    id: uuid.UUID
    event_id: uuid.UUID | None
    kind: str
    event_type: str
    message_id: str | None
    recipient: str | None
    occurred_at: datetime | None
    state: str | None
    subject: str | None
    url: str | None
    ip: str | None
    details: dict[str, Any] = Field(description="The Mandrill event as received")

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryOut:
        return cls.model_validate(delivery)


class DeliveryList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"message_id": DELIVERY_EXAMPLE["message_id"], "items": [DELIVERY_EXAMPLE]}
            ]
        }
    )

    message_id: str
    items: list[DeliveryOut]
