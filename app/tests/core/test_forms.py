"""The fast urlencoded decoder gives exactly what the standard library gives, for any input."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote_plus, unquote_to_bytes, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.forms import TooManyFields, parse_urlencoded, unquote_plus_bytes


@settings(max_examples=1000, deadline=None)
@given(raw=st.binary(max_size=300))
def test_well_formed_values_round_trip(raw: bytes) -> None:
    assert unquote_plus_bytes(quote_plus(raw).encode()) == raw


@settings(max_examples=1000, deadline=None)
@given(
    pieces=st.lists(
        st.sampled_from([*"%+=&aZ09fF \r\n\t.é", "%2", "%4A", "%zz", "%0d%0A", "%%", "%3D"]),
        max_size=40,
    )
)
def test_any_input_matches_the_standard_library(pieces: list[str]) -> None:
    value = "".join(pieces).encode()
    assert unquote_plus_bytes(value) == unquote_to_bytes(value.replace(b"+", b" "))


@settings(max_examples=300, deadline=None)
@given(
    pairs=st.lists(st.tuples(st.text(min_size=1, max_size=10), st.text(max_size=40)), max_size=8)
)
def test_parse_matches_parse_qsl(pairs: list[tuple[str, str]]) -> None:
    body = urlencode(pairs).encode()
    expected = [
        (k.encode("utf-8", "surrogateescape"), v.encode("utf-8", "surrogateescape"))
        for k, v in parse_qsl(
            body.decode(), keep_blank_values=True, encoding="utf-8", errors="surrogateescape"
        )
    ]
    assert parse_urlencoded(body, max_fields=100) == expected


@pytest.mark.parametrize(
    "value",
    [b"%", b"abc%", b"%4", b"%%41", b"%zz%41", b"%4%41", b"%3D%3d", b"%4a%4A", b"% 41", b"%\t1"],
)
def test_malformed_escapes_decode_as_the_standard_library_does(value: bytes) -> None:
    # Each of these is one or more malformed escapes (some beside well-formed ones): the
    # decoded length must give them away, whatever the quoted-printable decoder made of them.
    assert unquote_plus_bytes(value) == unquote_to_bytes(value)


def test_field_limit() -> None:
    with pytest.raises(TooManyFields):
        parse_urlencoded(b"&".join([b"a=1"] * 101), max_fields=100)
    assert len(parse_urlencoded(b"&".join([b"a=1"] * 100), max_fields=100)) == 100
