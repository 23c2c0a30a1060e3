"""Mandrill (Mailchimp Transactional) webhooks: the form body, the signature, the events.

Everything here works on the raw decoded form values: the signature is computed over exactly
what Mandrill sent, never over JSON we re-serialised.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from app.core.errors import InvalidSignature, MalformedPayload
from app.core.forms import TooManyFields, parse_urlencoded
from app.db.models import EventKind
from app.db.repositories.new_events import NewEvent
from app.mail.parser import extract_message_id
from app.mail.text import clean_text

EVENTS_FIELD = "mandrill_events"
SETUP_CHECK_KEY = b"test-webhook"
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
MAX_FORM_FIELDS = 100
TOO_MANY_FIELDS = "The form has too many fields to be a Mandrill webhook."

FormParams = list[tuple[bytes, bytes]]
_EVENTS_FIELD = EVENTS_FIELD.encode()
_EMPTY_BATCH = [(_EVENTS_FIELD, b"[]")]


def parse_form(body: bytes) -> FormParams:
    """The urlencoded body as raw byte pairs: exactly what Mandrill signed, nothing re-encoded."""
    try:
        return parse_urlencoded(body, max_fields=MAX_FORM_FIELDS)
    except TooManyFields as exc:
        raise InvalidSignature(TOO_MANY_FIELDS) from exc


def _utf8(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")


def mandrill_signature(
    key: bytes, url: str, params: Iterable[tuple[str | bytes, str | bytes]]
) -> str:
    """base64(HMAC-SHA1(key, URL + each name and value, sorted by name))."""
    pairs = sorted(((_utf8(n), _utf8(v)) for n, v in params), key=lambda p: p[0])
    mac = hmac.new(key, url.encode("utf-8"), hashlib.sha1)
    for name, value in pairs:
        mac.update(name)
        mac.update(value)
    return base64.b64encode(mac.digest()).decode("ascii")


def _matches(provided: bytes, key: bytes, url: str, params: FormParams) -> bool:
    return hmac.compare_digest(provided, mandrill_signature(key, url, params).encode("ascii"))


def provided_signature(signature: str | None) -> bytes:
    """The X-Mandrill-Signature header as compared (raises when it is missing)."""
    if not signature:
        raise InvalidSignature("The X-Mandrill-Signature header is missing.")
    return signature.strip().encode("utf-8", "replace")


def verify_mandrill_signature(
    *, signature: str | None, url: str, params: FormParams, keys: Sequence[bytes]
) -> bool:
    """True for an authentic batch, False for Mandrill's setup check; raises when neither.

    The setup check is `mandrill_events=[]` signed with the literal key `test-webhook`: it is
    accepted (nothing is stored) and that key authenticates nothing else.
    """
    provided = provided_signature(signature)
    if any([_matches(provided, key, url, params) for key in keys]):  # noqa: C419 (check every key)
        return True
    if params == _EMPTY_BATCH and _matches(provided, SETUP_CHECK_KEY, url, params):
        return False
    raise InvalidSignature()


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


def dump_json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode("utf-8")
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, ensure_ascii=True)


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
        raw = msg.get("raw_msg")
        content_hash = _sha256(raw) if isinstance(raw, str) and raw else _sha256(payload)
        key = _sha256("inbound", message_id or "", content_hash)
        return NewEvent(EventKind.INBOUND, "inbound", key, message_id, payload)
    if isinstance(name, str):
        message_key = mandrill_message_id(event)
        key = _sha256("message", str(message_key), name, str(event.get("ts")))
        return NewEvent(EventKind.MESSAGE, clean_text(name)[:64], key, message_key, payload)
    sync_type = event.get("type")
    if "event" not in event and isinstance(sync_type, str) and sync_type in SYNC_TYPES:
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
