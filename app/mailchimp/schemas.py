from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from app.mailchimp.client import (
    AUDIENCE_EVENTS,
    WEBHOOK_SOURCES,
    AudienceEventName,
    WebhookSource,
    mask_webhook_url,
    points_at_kave,
)

MailchimpId = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class AudienceWebhookCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "list_id": "a6b5da1054",
                    "url": "https://kave.example.com",
                    "events": ["subscribe", "unsubscribe", "profile"],
                    "sources": ["user", "admin"],
                }
            ]
        }
    )

    list_id: str = MailchimpId
    url: str = Field(
        max_length=2000,
        description=(
            "Kave's public base URL as Mailchimp reaches it (https://kave.example.com, or with "
            "a path prefix). Kave appends /api/v1/webhooks/mailchimp/audience/<token>."
        ),
    )
    events: list[AudienceEventName] = Field(
        default_factory=lambda: list(AUDIENCE_EVENTS), min_length=1
    )
    sources: list[WebhookSource] = Field(
        default_factory=lambda: list(WEBHOOK_SOURCES), min_length=1
    )


class AudienceWebhookOut(BaseModel):
    """A webhook as Mailchimp holds it; the token in Kave's URL is shown as `***`."""

    id: str
    list_id: str | None = None
    url: str
    events: dict[str, bool] = {}
    sources: dict[str, bool] = {}
    points_at_kave: bool = Field(
        description="The URL carries Kave's current MAILCHIMP_AUDIENCE_WEBHOOK_TOKEN."
    )


class AudienceWebhookList(BaseModel):
    list_id: str
    total_items: int
    webhooks: list[AudienceWebhookOut]


def _bools(value: Any) -> dict[str, bool]:
    if not isinstance(value, dict):
        return {}
    return {str(k): bool(v) for k, v in value.items()}


def webhook_out(raw: dict[str, Any], token: SecretStr | None) -> AudienceWebhookOut:
    url = str(raw.get("url") or "")
    return AudienceWebhookOut(
        id=str(raw.get("id") or ""),
        list_id=str(raw["list_id"]) if raw.get("list_id") is not None else None,
        url=mask_webhook_url(url),
        events=_bools(raw.get("events")),
        sources=_bools(raw.get("sources")),
        points_at_kave=points_at_kave(url, token),
    )


def webhook_list_out(
    raw: dict[str, Any], *, list_id: str, token: SecretStr | None
) -> AudienceWebhookList:
    hooks = raw.get("webhooks")
    webhooks = (
        [webhook_out(h, token) for h in hooks if isinstance(h, dict)]
        if isinstance(hooks, list)
        else []
    )
    total = raw.get("total_items")
    return AudienceWebhookList(
        list_id=str(raw.get("list_id") or list_id),
        total_items=total if isinstance(total, int) else len(webhooks),
        webhooks=webhooks,
    )
