"""The signature algorithm against Mailchimp's published vectors and real captured traffic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.errors import MalformedPayload
from app.mandrill.errors import InvalidSignature
from app.mandrill.form import decode_events, parse_form
from app.mandrill.signature import mandrill_signature, verify_mandrill_signature

DATA = Path(__file__).resolve().parents[1] / "data" / "mandrill"


def captured() -> dict[str, object]:
    return json.loads((DATA / "click-batch-signed.json").read_text())


def test_published_setup_check_vector() -> None:
    params = [(b"mandrill_events", b"[]")]
    assert (
        mandrill_signature(b"test-webhook", "https://example.com/webhooks/mandrill", params)
        == "RkoiKvvb1/ST8DFDdTB9MQGqorM="
    )


def test_real_captured_click_batch_verifies() -> None:
    fixture = captured()
    params = parse_form(str(fixture["body_urlencoded"]).encode())
    assert verify_mandrill_signature(
        signature=fixture["headers"]["X-Mandrill-Signature"],  # type: ignore[index]
        url=str(fixture["webhook_url"]),
        params=params,
        keys=[str(fixture["webhook_key"]).encode()],
    )
    events = decode_events(params)
    assert [e["event"] for e in events] == ["click"] * len(events)
    # Mandrill escapes slashes; the value signed is the raw one, not re-serialised JSON.
    assert b"\\/" in params[0][1]


def test_one_changed_byte_fails() -> None:
    fixture = captured()
    body = str(fixture["body_urlencoded"]).replace("Oklahoma", "Oklahomb", 1).encode()
    with pytest.raises(InvalidSignature):
        verify_mandrill_signature(
            signature=fixture["headers"]["X-Mandrill-Signature"],  # type: ignore[index]
            url=str(fixture["webhook_url"]),
            params=parse_form(body),
            keys=[str(fixture["webhook_key"]).encode()],
        )


def test_url_must_match_exactly() -> None:
    fixture = captured()
    with pytest.raises(InvalidSignature):
        verify_mandrill_signature(
            signature=fixture["headers"]["X-Mandrill-Signature"],  # type: ignore[index]
            url=str(fixture["webhook_url"]) + "/",
            params=parse_form(str(fixture["body_urlencoded"]).encode()),
            keys=[str(fixture["webhook_key"]).encode()],
        )


def test_rotation_any_configured_key_verifies() -> None:
    params = [(b"mandrill_events", b"[]"), (b"a", b"1")]
    sig = mandrill_signature(b"new", "https://x.example/hook", params)
    assert verify_mandrill_signature(
        signature=sig, url="https://x.example/hook", params=params, keys=[b"old", b"new"]
    )


def test_setup_key_opens_only_the_empty_batch() -> None:
    url = "https://x.example/hook"
    empty = [(b"mandrill_events", b"[]")]
    sig = mandrill_signature(b"test-webhook", url, empty)
    assert verify_mandrill_signature(signature=sig, url=url, params=empty, keys=[b"real"]) is False
    batch = [(b"mandrill_events", b'[{"event":"open"}]')]
    sig = mandrill_signature(b"test-webhook", url, batch)
    with pytest.raises(InvalidSignature):
        verify_mandrill_signature(signature=sig, url=url, params=batch, keys=[b"real"])


def test_missing_signature() -> None:
    with pytest.raises(InvalidSignature):
        verify_mandrill_signature(signature=None, url="u", params=[], keys=[b"k"])


@pytest.mark.parametrize("value", ["{}", "not json", '"a string"', "1", '{"event": "open"}'])
def test_not_a_json_array_is_malformed(value: str) -> None:
    with pytest.raises(MalformedPayload):
        decode_events([(b"mandrill_events", value.encode())])


def test_missing_field_is_malformed() -> None:
    with pytest.raises(MalformedPayload):
        decode_events([(b"other", b"[]")])


@settings(max_examples=300, deadline=None)
@given(
    body=st.binary(max_size=2048),
    signature=st.one_of(st.none(), st.text(max_size=64)),
    keys=st.lists(st.binary(min_size=1, max_size=32), max_size=3),
)
def test_any_input_gives_a_verdict_or_a_domain_error(
    body: bytes, signature: str | None, keys: list[bytes]
) -> None:
    try:
        params = parse_form(body)
        verify_mandrill_signature(
            signature=signature, url="https://k.example/", params=params, keys=keys
        )
        decode_events(params)
    except (InvalidSignature, MalformedPayload):
        pass


@settings(max_examples=200, deadline=None)
@given(value=st.text(max_size=500), key=st.binary(min_size=1, max_size=32))
def test_signed_values_round_trip_through_the_form(value: str, key: bytes) -> None:
    from urllib.parse import urlencode

    params = [("mandrill_events", value)]
    sig = mandrill_signature(key, "https://k.example/", params)
    parsed = parse_form(urlencode(params).encode())
    assert verify_mandrill_signature(
        signature=sig, url="https://k.example/", params=parsed, keys=[key]
    )
