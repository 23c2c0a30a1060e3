"""Mailchimp Marketing (audience) webhook events: what the fields mean and how one is keyed.

`fired_at` arrives as `YYYY-MM-DD HH:MM:SS` with no time zone. Mailchimp does not document the
zone; Kave reads it in `MAILCHIMP_FIRED_AT_TIMEZONE` (an IANA name, default UTC) and stores it
converted to UTC next to the string exactly as sent. A wall-clock time that occurs twice (the
hour a DST change repeats) is read as its first occurrence; anything unparseable is None.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.mail.text import clean_json, clean_text
from app.processing.models import EventKind
from app.processing.new_events import NewEvent
from app.processing.payloads import canonical_json, dump_json

AUDIENCE_TYPES = frozenset(
    {"subscribe", "unsubscribe", "profile", "upemail", "cleaned", "campaign"}
)
FIRED_AT_FORMAT = "%Y-%m-%d %H:%M:%S"
EVENT_TYPE_CHARS = 64
MESSAGE_KEY_CHARS = 512


class UnknownTimeZone(ValueError):
    """MAILCHIMP_FIRED_AT_TIMEZONE names no zone this system knows."""


@lru_cache(maxsize=8)
def fired_at_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UnknownTimeZone(
            f"MAILCHIMP_FIRED_AT_TIMEZONE {name!r} is not an IANA time zone name"
        ) from exc


def parse_fired_at(raw: Any, zone: ZoneInfo) -> datetime | None:
    """The UTC instant of a `fired_at` value, or None when it is missing or not in the format."""
    if not isinstance(raw, str):
        return None
    try:
        local = datetime.strptime(raw.strip(), FIRED_AT_FORMAT)
        return local.replace(tzinfo=zone).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _text(value: Any) -> str | None:
    """A plain form value; a nested structure where a string belongs counts as absent."""
    return (clean_text(value) or None) if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class AudienceFields:
    """The columns Kave keeps for one audience event, read from the parsed form."""

    type: str
    fired_at_raw: str | None
    list_id: str | None
    email: str | None
    campaign_id: str | None
    data: dict[str, Any]

    @property
    def subject(self) -> str | None:
        """Who or what the event is about: the member's email, else the campaign."""
        return self.email or self.campaign_id


def read_fields(form: dict[str, Any]) -> AudienceFields | None:
    """None when the form has no usable `type`; a `data` that is not an object reads as empty."""
    event_type = _text(form.get("type"))
    if event_type is None:
        return None
    data = form.get("data")
    data = data if isinstance(data, dict) else {}
    # upemail: the member's address is the new one; old_email stays in `data`.
    email = _text(data.get("new_email")) if event_type == "upemail" else _text(data.get("email"))
    campaign_id = _text(data.get("campaign_id"))
    if campaign_id is None and event_type == "campaign":
        campaign_id = _text(data.get("id"))
    return AudienceFields(
        type=event_type,
        fired_at_raw=_text(form.get("fired_at")),
        list_id=_text(data.get("list_id")),
        email=email,
        campaign_id=campaign_id,
        data=clean_json(data),
    )


def _sha256(*parts: str | None) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update((part or "").encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


def audience_new_event(form: dict[str, Any], fields: AudienceFields) -> NewEvent:
    """An identical redelivery has one key; two events of one member in the same second
    (`fired_at` has whole seconds) with different data, say two profile updates, have two.

    The key is the event's `type`, `fired_at` and whole `data` in one canonical spelling, so
    the order Mailchimp writes the fields in does not matter.
    """
    event = {name: form.get(name) for name in ("type", "fired_at", "data")}
    key = _sha256("audience/2", canonical_json(event))
    subject = fields.subject[:MESSAGE_KEY_CHARS] if fields.subject else None
    return NewEvent(
        kind=EventKind.AUDIENCE,
        event_type=fields.type[:EVENT_TYPE_CHARS],
        dedupe_key=key,
        message_key=subject,
        payload=dump_json(form),
    )
