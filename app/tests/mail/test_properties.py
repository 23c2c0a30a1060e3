"""Property tests: parse_inbound returns a storable ParsedEmail for any input, or raises
UnparseableMessage; never anything else."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.mail.errors import UnparseableMessage
from app.mail.parsed import ParsedEmail
from app.mail.parser import extract_message_id, parse_inbound
from app.tests.mail.builders import assert_storable

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=8,
)
# Lines a hostile message is made of: MIME syntax worth colliding, mixed with noise.
mime_lines = st.sampled_from(
    [
        "",
        "--b",
        "--b--",
        "--c",
        'Content-Type: multipart/mixed; boundary="b"',
        'Content-Type: multipart/alternative; boundary="c"',
        "Content-Type: message/rfc822",
        "Content-Type: message/delivery-status",
        "Content-Type: text/plain; charset=x-unknown",
        "Content-Type: text/html; charset=idna",
        "Content-Type: image/png",
        "Content-Transfer-Encoding: base64",
        "Content-Transfer-Encoding: quoted-printable",
        "Content-Transfer-Encoding: x-uuencode",
        "Content-Disposition: attachment; filename*=utf-8''%0D%0A..%2F..%2Fx",
        "Content-Disposition: inline; filename*0*=x-unknown''a; filename*1=b",
        "Content-ID: <cid@x>",
        "From: =?utf-8?q?a=0D=0Ab?= <x@y>, ((((nested",
        "To: undisclosed-recipients:;",
        "Date: Mon, 1 Jan 99999999999 00:00:00 +0000",
        "Subject: =?x-unknown?b?////?= =?utf-8?q?=ZZ?=",
        "Message-ID: <<>>",
        "References: <a> b <c",
        " folded continuation",
        "QUJD",
        "=E9=",
        "\x00\x80\xff",
    ]
) | st.text(max_size=30)
mime_text = st.lists(mime_lines, max_size=40).map("\r\n".join)
raw_messages = (
    st.text()
    | st.binary().map(lambda data: data.decode("latin-1"))
    | st.binary().map(lambda data: data.decode("utf-8", "surrogateescape"))
    | mime_text
)
mandrill_msgs = st.fixed_dictionaries(
    {},
    optional={
        "raw_msg": st.none() | st.just("") | raw_messages,
        "headers": json_values
        | st.dictionaries(
            st.sampled_from(["Message-Id", "Date", "From", "To", "References"]),
            json_values | st.text(),
        ),
        "subject": json_values,
        "from_email": json_values,
        "from_name": json_values,
        "to": json_values,
        "cc": json_values,
        "text": json_values,
        "html": json_values,
        "attachments": json_values
        | st.dictionaries(
            st.text(max_size=10),
            st.fixed_dictionaries(
                {
                    "name": json_values,
                    "type": json_values,
                    "content": st.text(),
                    "base64": json_values,
                }
            ),
        ),
        "images": json_values,
        "email": json_values,
        "spam_report": json_values,
        "spf": json_values,
        "dkim": json_values,
        "tags": json_values,
    },
)


def _parse(msg: object) -> ParsedEmail | None:
    try:
        parsed = parse_inbound(msg)
    except UnparseableMessage:
        return None
    assert_storable(parsed)
    return parsed


@SETTINGS
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_arbitrary_dicts(msg: dict[str, Any]) -> None:
    _parse(msg)
    extract_message_id(msg)


@SETTINGS
@given(mandrill_msgs)
def test_arbitrary_mandrill_shaped_msgs(msg: dict[str, Any]) -> None:
    _parse(msg)
    extract_message_id(msg)


@SETTINGS
@given(raw_messages)
@example("Content-Type: multipart/mixed\r\n\r\n--\r\n")
@example("\ud800\udc00\udfff")
def test_any_raw_msg_gives_an_email(raw_msg: str) -> None:
    parsed = _parse({"raw_msg": raw_msg})
    if raw_msg and not raw_msg.isspace():
        assert parsed is not None
        assert parsed.raw is not None
    extract_message_id({"raw_msg": raw_msg})


@SETTINGS
@given(st.binary())
def test_raw_bytes_round_trip(data: bytes) -> None:
    raw_msg = data.decode("utf-8", "surrogateescape")
    parsed = _parse({"raw_msg": raw_msg, "subject": "s"})
    assert parsed is not None
    assert parsed.raw == (None if raw_msg.isspace() or not raw_msg else data)


@settings(max_examples=50, deadline=None)
@given(json_values.filter(lambda value: not isinstance(value, dict)))
def test_non_objects_are_unparseable(msg: object) -> None:
    with pytest.raises(UnparseableMessage):
        parse_inbound(msg)
