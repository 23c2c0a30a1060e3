"""The background handler that turns a stored audience webhook into an `AudienceEvent` row."""

from __future__ import annotations

from typing import Any

import orjson

from app.audience.events import (
    AUDIENCE_TYPES,
    AudienceFields,
    fired_at_zone,
    parse_fired_at,
    read_fields,
)
from app.audience.models import AudienceEvent
from app.processing.context import ProcessingContext
from app.processing.inbox import ClaimedEvent
from app.processing.outcomes import EventIgnored, PermanentFailure, Records

# Column widths of audience_events.
_LIST_ID_CHARS = 64
_CAMPAIGN_ID_CHARS = 64
_EMAIL_CHARS = 998
_FIRED_AT_CHARS = 64


def _load_fields(event: ClaimedEvent) -> AudienceFields:
    payload = event.take_payload()
    if payload is None:
        raise PermanentFailure("the payload was purged; the event cannot be processed again")
    try:
        form: Any = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise PermanentFailure("the stored payload is not JSON") from exc
    if not isinstance(form, dict):
        raise PermanentFailure("the stored payload is not a JSON object")
    if "data" in form and not isinstance(form["data"], dict):
        raise PermanentFailure("the form field 'data' is a plain value, not data[...] fields")
    fields = read_fields(form)
    if fields is None:
        raise PermanentFailure("the form has no 'type'")
    return fields


def _clip(value: str | None, limit: int) -> str | None:
    return value[:limit] if value is not None else None


async def process_audience_event(ctx: ProcessingContext, event: ClaimedEvent) -> Records:
    fields = _load_fields(event)
    if fields.type not in AUDIENCE_TYPES:
        raise EventIgnored(f"Kave does not record Mailchimp audience '{event.event_type}' events")
    # An unknown zone name is a configuration error: it raises, and the event is retried.
    zone = fired_at_zone(ctx.settings.mailchimp_fired_at_timezone)
    row = AudienceEvent(
        event_id=event.id,
        type=fields.type,
        fired_at_raw=_clip(fields.fired_at_raw, _FIRED_AT_CHARS),
        fired_at=parse_fired_at(fields.fired_at_raw, zone),
        list_id=_clip(fields.list_id, _LIST_ID_CHARS),
        # Lower-cased so the indexed filter matches whatever case the operator types;
        # the address exactly as sent stays in `data`.
        email=_clip(fields.email.strip().lower() if fields.email else None, _EMAIL_CHARS),
        campaign_id=_clip(fields.campaign_id, _CAMPAIGN_ID_CHARS),
        data=fields.data,
    )
    return Records(event.id, AudienceEvent, [row])
