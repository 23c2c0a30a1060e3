"""Request and response bodies of the destinations and notifications API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from app.core.times import as_utc
from app.destinations.models import Destination, Notification, NotificationAttempt
from app.destinations.patterns import InvalidPattern, validate_pattern


def _pattern(value: str) -> str:
    try:
        return validate_pattern(value)
    except InvalidPattern as exc:
        raise ValueError(str(exc)) from None


class DestinationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048, examples=["https://agents.example.com/hooks/kave"])
    recipients: str = Field(
        default="*",
        max_length=320,
        description="`*`, `support@*`, `*@agents.example.com`, `agent+{tag}@agents.example.com`",
    )
    description: str = Field(default="", max_length=2000)
    enabled: bool = True

    _recipients = field_validator("recipients")(_pattern)


class DestinationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=2048)
    recipients: str | None = Field(default=None, max_length=320)
    description: str | None = Field(default=None, max_length=2000)
    enabled: bool | None = None

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: str | None) -> str | None:
        return _pattern(value) if value is not None else None


class DestinationOut(BaseModel):
    id: uuid.UUID
    url: str
    recipients: str
    description: str
    enabled: bool
    disabled_reason: str | None = Field(description="Why Kave disabled it (a 410 Gone), if it did")
    failing: bool = Field(description="Recent attempts keep failing")
    consecutive_failures: int
    previous_secret_expires_at: datetime | None = Field(
        description="Until then the secret before the last rotation signs beside the new one"
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, d: Destination) -> DestinationOut:
        return cls(
            id=d.id,
            url=d.url,
            recipients=d.recipients,
            description=d.description,
            enabled=d.enabled,
            disabled_reason=d.disabled_reason,
            failing=d.failing_since is not None,
            consecutive_failures=d.consecutive_failures,
            previous_secret_expires_at=d.previous_secret_expires_at,
            created_at=d.created_at,
            updated_at=d.updated_at,
        )


class DestinationCreated(DestinationOut):
    secret: str = Field(description="The signing secret (`whsec_...`), shown this once")

    @classmethod
    def with_secret(cls, d: Destination) -> DestinationCreated:
        return cls(**DestinationOut.of(d).model_dump(), secret=d.secret)


class DestinationList(BaseModel):
    items: list[DestinationOut]


class SecretRotated(BaseModel):
    secret: str = Field(description="The new signing secret, shown this once")
    previous_secret_expires_at: datetime | None


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    notification_id: uuid.UUID
    at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    response_body: str | None = Field(description="The first 1 KB of the answer")


class NotificationOut(BaseModel):
    id: uuid.UUID
    webhook_id: str = Field(description="The `webhook-id` header of every attempt")
    destination_id: uuid.UUID
    email_id: uuid.UUID | None
    type: str
    tag: str | None
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, n: Notification) -> NotificationOut:
        return cls(
            id=n.id,
            webhook_id=n.webhook_id,
            destination_id=n.destination_id,
            email_id=n.email_id,
            type=n.type,
            tag=n.tag,
            status=n.status,
            attempts=n.attempts,
            next_attempt_at=n.next_attempt_at,
            last_status_code=n.last_status_code,
            last_error=n.last_error,
            delivered_at=n.delivered_at,
            created_at=n.created_at,
        )


class NotificationDetail(NotificationOut):
    attempt_log: list[AttemptOut]

    @classmethod
    def with_attempts(
        cls, n: Notification, attempts: list[NotificationAttempt]
    ) -> NotificationDetail:
        return cls(
            **NotificationOut.of(n).model_dump(),
            attempt_log=[AttemptOut.model_validate(a) for a in attempts],
        )


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_cursor: str | None


class RecoverRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: Annotated[datetime, AfterValidator(as_utc)] = Field(
        description="Send again what was created at or after this time (no zone: UTC)"
    )
    until: Annotated[datetime | None, AfterValidator(lambda v: as_utc(v) if v else v)] = Field(
        default=None, description="...and before this one"
    )


class RecoverResult(BaseModel):
    requeued: int
