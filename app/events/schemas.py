"""Response bodies of the event inbox routes."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from app.processing.models import EventKind, EventStatus, WebhookEvent

EVENT_EXAMPLE: dict[str, Any] = {
    "id": "d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6",
    "kind": "inbound",
    "event_type": "inbound",
    "status": "failed",
    "attempts": 8,
    "last_error": "PermanentFailure: the event is not a JSON object",
    "message_key": "170.42@example.org",
    "payload_bytes": 68542,
    "payload_purged": False,
    "received_at": "2026-11-21T10:15:02.123456Z",
    "next_attempt_at": "2026-11-21T10:15:02.123456Z",
    "processing_started_at": "2026-11-21T10:15:02.2Z",
    "processed_at": None,
    "failed_at": "2026-11-21T10:15:02.3Z",
    "updated_at": "2026-11-21T10:15:02.3Z",
}


class EventOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EVENT_EXAMPLE]})

    id: uuid.UUID
    kind: EventKind
    event_type: str
    status: EventStatus
    attempts: int
    last_error: str | None
    message_key: str | None = Field(
        description="Message-ID of an inbound email, or the Mandrill `_id` of a message event"
    )
    payload_bytes: int
    payload_purged: bool = Field(description="The payload was dropped after the retention period")
    received_at: datetime
    next_attempt_at: datetime
    processing_started_at: datetime | None
    processed_at: datetime | None
    failed_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, event: WebhookEvent) -> EventOut:
        return cls(**_event_fields(event))


def _event_fields(event: WebhookEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "kind": event.kind,
        "event_type": event.event_type,
        "status": event.status,
        "attempts": event.attempts,
        "last_error": event.last_error,
        "message_key": event.message_key,
        "payload_bytes": event.payload_bytes,
        "payload_purged": event.payload_purged_at is not None,
        "received_at": event.received_at,
        "next_attempt_at": event.next_attempt_at,
        "processing_started_at": event.processing_started_at,
        "processed_at": event.processed_at,
        "failed_at": event.failed_at,
        "updated_at": event.updated_at,
    }


class EventDetail(EventOut):
    model_config = ConfigDict(
        json_schema_extra={"examples": [EVENT_EXAMPLE | {"payload": {"event": "inbound"}}]}
    )

    payload: Any = Field(
        default=None,
        description="The event as received (parsed JSON); only with `include_payload=true`",
    )

    @classmethod
    def with_payload(cls, event: WebhookEvent, payload: Any) -> EventDetail:
        return cls(**_event_fields(event), payload=payload)


class EventPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [EVENT_EXAMPLE], "next_cursor": None}]}
    )

    items: list[EventOut]
    next_cursor: str | None


class EventStats(BaseModel):
    by_status: dict[str, int]
    by_kind: dict[str, int]
    by_kind_and_status: dict[str, dict[str, int]]
    unprocessed: int = Field(description="Events received or processing")
    oldest_unprocessed_age_seconds: float | None


class Stats(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "events": {
                        "by_status": {
                            "received": 0,
                            "processing": 1,
                            "processed": 1520,
                            "failed": 2,
                            "ignored": 14,
                        },
                        "by_kind": {
                            "inbound": 240,
                            "message": 1290,
                            "sync": 3,
                            "audience": 0,
                            "invalid": 4,
                        },
                        "by_kind_and_status": {"inbound": {"processed": 238, "failed": 2}},
                        "unprocessed": 1,
                        "oldest_unprocessed_age_seconds": 0.8,
                    },
                    "emails": 238,
                    "attachments": 97,
                    "attachment_bytes": 48213990,
                }
            ]
        }
    )

    events: EventStats
    emails: int
    attachments: int
    attachment_bytes: int


def parse_payload(payload: str | None) -> Any:
    if payload is None:
        return None
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        # Stored by the stdlib fallback (lone surrogates orjson refuses); still JSON.
        return json.loads(payload)
