"""What kind of Mandrill event each is, and the dedupe key that merges true repeats only."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from app.core.errors import MalformedPayload
from app.mail.parser import extract_message_id
from app.mail.text import clean_text
from app.mandrill.form import EVENTS_FIELD
from app.processing.models import EventKind
from app.processing.new_events import NewEvent
from app.processing.payloads import canonical_json, dump_json

MESSAGE_EVENTS = frozenset(
    {
        "send",
        "deferral",
        "hard_bounce",
        "soft_bounce",
        "open",
        "click",
        "spam",
        "unsub",
        "reject",
        "delivered",
    }
)


SYNC_TYPES = frozenset({"blacklist", "whitelist"})


def _sha256(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


def mandrill_message_id(event: dict[str, Any]) -> str | None:
    """The message `_id`: top level in current payloads, inside `msg` in older captures."""
    msg = event.get("msg")
    for candidate in (event.get("_id"), msg.get("_id") if isinstance(msg, dict) else None):
        if isinstance(candidate, str) and candidate:
            return clean_text(candidate)[:128]  # a column: no lone surrogate, no NUL
    return None


def inbound_key(msg: dict[str, Any], message_id: str | None, payload: str) -> str:
    """(Message-ID, hash of `raw_msg`, receiving address): Mandrill posts one inbound event per
    receiving address with the same `raw_msg`, so the address is what tells `sales@`'s copy
    from `support@`'s; a retried batch repeats all three and is one event."""
    raw = msg.get("raw_msg")
    content_hash = _sha256(raw) if isinstance(raw, str) and raw else _sha256(payload)
    recipient = msg.get("email")
    recipient = recipient.strip().lower() if isinstance(recipient, str) else ""
    return _sha256("inbound/2", message_id or "", content_hash, recipient)


# A message event's own fields: `msg` is left out because its state (opens, clicks,
# smtp_events) grows between Mailchimp's retries of one batch. A bounce's reason sits in `msg`
# but belongs to the event, and does not change on a retry.
_EVENT_OWN_MSG_FIELDS = ("diag", "bounce_description")


def message_event_key(event: dict[str, Any], message_key: str | None) -> str:
    """Every top-level field but `msg` (`_id`, `event`, `ts`, `url`, `ip`, `user_agent`,
    `location`, and whatever Mailchimp adds), so two clicks on two links in one second are two
    events and a retry of either is one."""
    own = {name: value for name, value in event.items() if name != "msg"}
    msg = event.get("msg")
    if isinstance(msg, dict):
        own["msg"] = {f: msg[f] for f in _EVENT_OWN_MSG_FIELDS if msg.get(f) is not None}
    return _sha256("message/2", str(message_key), canonical_json(own))


def classify_event(event: Any) -> NewEvent:
    """Kind, type and dedupe key of one event. Never raises: an odd event is kept as `invalid`."""
    payload = dump_json(event)
    if not isinstance(event, dict):
        return NewEvent(EventKind.INVALID, "invalid", _sha256("invalid", payload), None, payload)
    name = event.get("event")
    if name == "inbound":
        msg = event.get("msg")
        if not isinstance(msg, dict):
            return NewEvent(
                EventKind.INVALID, "inbound", _sha256("invalid", payload), None, payload
            )
        message_id = extract_message_id(msg)
        return NewEvent(
            EventKind.INBOUND, "inbound", inbound_key(msg, message_id, payload), message_id, payload
        )
    if isinstance(name, str):
        message_key = mandrill_message_id(event)
        key = message_event_key(event, message_key)
        return NewEvent(EventKind.MESSAGE, clean_text(name)[:64], key, message_key, payload)
    sync_type = event.get("type")
    if "event" not in event and isinstance(sync_type, str) and sync_type in SYNC_TYPES:
        # Sync keys are unchanged: the whole event, which carries nothing that grows.
        canonical = json.dumps(event, sort_keys=True, ensure_ascii=True)
        return NewEvent(EventKind.SYNC, sync_type, _sha256("sync", canonical), None, payload)
    return NewEvent(EventKind.INVALID, "unknown", _sha256("invalid", payload), None, payload)


def classify_batch(events: list[Any]) -> list[NewEvent]:
    """Classify a batch and drop repeats inside it (they count as duplicates)."""
    seen: set[str] = set()
    unique: list[NewEvent] = []
    for event in events:
        try:
            new = classify_event(event)
        except RecursionError as exc:  # nested deeper than any serialiser will write back
            raise MalformedPayload(f"'{EVENTS_FIELD}' is nested too deeply.") from exc
        if new.dedupe_key not in seen:
            seen.add(new.dedupe_key)
            unique.append(new)
    return unique
