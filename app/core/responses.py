"""JSON responses rendered by orjson (FastAPI's own ORJSONResponse is deprecated), and the
answer both webhooks give Mailchimp once a batch is committed."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class WebhookAck(BaseModel):
    """What Kave answers Mailchimp once the batch is committed."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"accepted": 3, "duplicates": 1}]})

    accepted: int
    duplicates: int


def ack_response(accepted: int, duplicates: int) -> Response:
    """A `WebhookAck` rendered directly: the same JSON, without validating two integers."""
    body = orjson.dumps({"accepted": accepted, "duplicates": duplicates})
    return Response(body, media_type="application/json")
