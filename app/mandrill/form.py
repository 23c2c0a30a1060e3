"""The Mandrill webhook's form body: exactly what Mandrill signed, nothing re-encoded."""

from __future__ import annotations

import json
from typing import Any

import orjson

from app.core.errors import MalformedPayload
from app.core.forms import TooManyFields, parse_urlencoded
from app.mandrill.errors import InvalidSignature

EVENTS_FIELD = "mandrill_events"


MAX_FORM_FIELDS = 100
TOO_MANY_FIELDS = "The form has too many fields to be a Mandrill webhook."


FormParams = list[tuple[bytes, bytes]]


_EVENTS_FIELD = EVENTS_FIELD.encode()


def parse_form(body: bytes) -> FormParams:
    """The urlencoded body as raw byte pairs: exactly what Mandrill signed, nothing re-encoded."""
    try:
        return parse_urlencoded(body, max_fields=MAX_FORM_FIELDS)
    except TooManyFields as exc:
        raise InvalidSignature(TOO_MANY_FIELDS) from exc


def decode_events(params: FormParams) -> list[Any]:
    values = [value for name, value in params if name == _EVENTS_FIELD]
    if not values:
        raise MalformedPayload(f"The form field '{EVENTS_FIELD}' is missing.")
    if len(values) > 1:
        raise MalformedPayload(f"The form field '{EVENTS_FIELD}' appears more than once.")
    try:
        events = orjson.loads(values[0])
    except orjson.JSONDecodeError:
        # orjson refuses lone surrogate escapes ("\ud800") that the JSON grammar allows; an
        # authentic batch must not be refused for one odd string, so the stdlib has a go.
        try:
            events = json.loads(values[0].decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
            raise MalformedPayload(f"'{EVENTS_FIELD}' is not valid JSON.") from exc
    if not isinstance(events, list):
        raise MalformedPayload(f"'{EVENTS_FIELD}' must be a JSON array of events.")
    return events
