"""Hypothesis against the Mandrill payload code, below HTTP: whatever arrives, the result is a
value or a domain error (`InvalidSignature`, `MalformedPayload`), never another exception, and
what `classify_batch` returns can always be stored (UTF-8 text without NUL that fits its column).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.core.errors import MalformedPayload
from app.mandrill.classify import classify_batch, classify_event
from app.mandrill.errors import InvalidSignature
from app.mandrill.form import EVENTS_FIELD, decode_events, parse_form
from app.mandrill.signature import mandrill_signature, verify_mandrill_signature
from app.processing.models import EventKind, WebhookEvent
from app.tests.security.strategies import (
    event_lists,
    json_text_with_surrogates,
    json_values,
    surrogate_batches,
)

URL = "https://kave.example.com/api/v1/webhooks/mailchimp"
KEYS = [b"key-one", b"key-two"]
FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
COLUMNS = WebhookEvent.__table__.c
HEX64 = re.compile(r"[0-9a-f]{64}")


def _column_length(name: str) -> int:
    length = COLUMNS[name].type.length
    assert isinstance(length, int)
    return length


def assert_storable_text(value: str | None, *, column: str) -> None:
    """What PostgreSQL and SQLite both take: UTF-8 encodable, no NUL, within the column."""
    if value is None:
        return
    assert isinstance(value, str)
    value.encode("utf-8")  # a lone surrogate raises here, as it does in asyncpg and sqlite3
    assert "\x00" not in value, f"NUL in {column}: {value!r}"
    assert len(value) <= _column_length(column), f"{column} too long: {len(value)}"


def assert_classified(events: list[Any]) -> None:
    classified = classify_batch(events)
    assert len(classified) <= len(events)
    keys = [new.dedupe_key for new in classified]
    assert len(set(keys)) == len(keys), "classify_batch let an in-batch repeat through"
    # Every input event is represented: a repeat is dropped only when its key was kept.
    assert {classify_event(event).dedupe_key for event in events} == set(keys)
    for new in classified:
        assert new.kind in set(EventKind)
        assert_storable_text(new.kind, column="kind")
        assert_storable_text(new.event_type, column="event_type")
        assert_storable_text(new.message_key, column="message_key")
        assert HEX64.fullmatch(new.dedupe_key)
        # The payload goes to a TEXT column and comes back through json.loads on replay.
        new.payload.encode("utf-8")
        assert "\x00" not in new.payload
        json.loads(new.payload)


def _params(value: bytes) -> list[tuple[bytes, bytes]]:
    return [(EVENTS_FIELD.encode(), value)]


# ---------------------------------------------------------------------------------- decode


@FUZZ
@given(pairs=st.lists(st.tuples(st.binary(max_size=20), st.binary(max_size=200)), max_size=5))
@example(pairs=[(b"mandrill_events", b"\xff\xfe")])
@example(pairs=[(b"mandrill_events", b'"\\ud800"')])
@example(pairs=[(b"mandrill_events", b"[1e99999]")])
@example(pairs=[(b"mandrill_events", b"[" * 10_000 + b"]" * 10_000)])
@example(pairs=[(b"mandrill_events", b"[]"), (b"mandrill_events", b"[]")])
def test_decode_events_over_arbitrary_form_pairs(pairs: list[tuple[bytes, bytes]]) -> None:
    try:
        events = decode_events(pairs)
    except MalformedPayload:
        return
    assert isinstance(events, list)


@FUZZ
@given(value=json_values)
def test_decode_events_over_any_json_value(value: Any) -> None:
    text = json.dumps(value).encode("utf-8", "surrogatepass")
    try:
        events = decode_events(_params(text))
    except MalformedPayload:
        assert not isinstance(value, list), "a JSON array was refused"
        return
    assert isinstance(value, list)
    assert len(events) == len(value)


@FUZZ
@given(text=json_text_with_surrogates)
@example(text='[{"event":"inbound","msg":{"raw_msg":"\\ud800"}}]')
@example(text='[{"event":"\\udfff","_id":"\\ud800\\u0000","ts":"\\ud83d"}]')
def test_lone_surrogate_escapes_are_decoded_not_refused(text: str) -> None:
    # JSON text built by hand: orjson refuses these escapes, the stdlib fallback must not.
    events = decode_events(_params(text.encode("ascii")))
    assert isinstance(events, list)
    assert_classified(events)


# -------------------------------------------------------------------------------- classify


@FUZZ
@given(events=event_lists)
@example(events=[{"event": "\ud800"}])
@example(events=[{"event": "open\x00", "_id": "a\x00b"}])
@example(events=[{"event": "inbound", "msg": {"headers": {"Message-Id": "<\ud800\x00@x>"}}}])
@example(events=[{"event": "x" * 500, "_id": "y" * 5000}])
@example(events=[{"type": "blacklist", "action": "add"}, {"type": "blacklist", "action": "add"}])
@example(events=[{"event": "inbound", "msg": {"raw_msg": "Message-ID: <\udcff@x>\r\n\r\n"}}])
def test_classify_batch_never_raises_and_is_storable(events: list[Any]) -> None:
    assert_classified(events)


@FUZZ
@given(events=surrogate_batches)
def test_classify_batch_over_decoded_hand_built_json(events: list[Any]) -> None:
    assert_classified(events)


@settings(FUZZ, max_examples=100)
@given(events=event_lists)
def test_classification_is_deterministic(events: list[Any]) -> None:
    first = [(n.kind, n.event_type, n.dedupe_key) for n in classify_batch(events)]
    again = [
        (n.kind, n.event_type, n.dedupe_key) for n in classify_batch(json.loads(json.dumps(events)))
    ]
    assert first == again


# --------------------------------------------------------------- form + signature + decode


def _pipeline(body: bytes, signature: str | None) -> list[Any] | None:
    """What the route does with a body; None for the setup check."""
    params = parse_form(body)
    if not verify_mandrill_signature(signature=signature, url=URL, params=params, keys=KEYS):
        return None
    return decode_events(params)


@FUZZ
@given(body=st.binary(max_size=400), signature=st.none() | st.text(max_size=40))
@example(body=b"mandrill_events=%5B%5D", signature="")
@example(body=b"&" * 200, signature="x")
@example(body=b"mandrill_events=%ZZ%", signature="\ud800")
@example(body=b"a=" + b"%ff" * 50, signature="\x00")
def test_unsigned_bodies_are_refused_with_a_domain_error(
    body: bytes, signature: str | None
) -> None:
    # Never accepted: the only ways out are the two domain errors (401 and 400).
    with pytest.raises((InvalidSignature, MalformedPayload)):
        _pipeline(body, signature)


@FUZZ
@given(body=st.binary(max_size=400), key=st.sampled_from(KEYS), extra=st.binary(max_size=30))
@example(body=b"mandrill_events=%5B%5D", key=KEYS[0], extra=b"")
@example(body=b"mandrill_events=%5B%5D&mandrill_events=%5B%5D", key=KEYS[1], extra=b"")
@example(
    body=b"mandrill_events=" + quote_from_bytes(b'[{"event":"\\ud800"}]').encode(),
    key=KEYS[0],
    extra=b"",
)
def test_signed_arbitrary_bodies_give_events_or_malformed_payload(
    body: bytes, key: bytes, extra: bytes
) -> None:
    body = body + extra
    try:
        params = parse_form(body)
    except InvalidSignature:
        assert body.count(b"&") >= 100  # the only reason parse_form refuses
        return
    signature = mandrill_signature(key, URL, params)
    try:
        events = _pipeline(body, signature)
    except MalformedPayload:
        return
    assert isinstance(events, list)
    assert_classified(events)


@settings(FUZZ, max_examples=100)
@given(events=event_lists, key=st.sampled_from(KEYS))
def test_signed_event_lists_round_trip_the_form(events: list[Any], key: bytes) -> None:
    value = json.dumps(events).encode("utf-8", "surrogatepass")
    body = b"mandrill_events=" + quote_from_bytes(value, safe=b"").encode()
    params = parse_form(body)
    assert params == _params(value)
    decoded = _pipeline(body, mandrill_signature(key, URL, params))
    assert decoded is not None
    assert len(decoded) == len(events)
    # One changed signature character is a refusal, never an acceptance.
    bad = mandrill_signature(b"not-" + key, URL, params)
    try:
        _pipeline(body, bad)
    except InvalidSignature:
        pass
    else:
        raise AssertionError("a wrongly signed batch was accepted")
