from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class WebhookAck(BaseModel):
    """What Kave answers Mailchimp once the batch is committed."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"accepted": 3, "duplicates": 1}]})

    accepted: int
    duplicates: int
