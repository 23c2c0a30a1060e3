"""The streaming decoder gives exactly the fast decoder's fields, however the body is chunked,
whether its values stay in memory or go to the temporary file."""

from __future__ import annotations

import itertools
from urllib.parse import quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.form_stream import FieldNameTooLong, FormDecoder, FormSpool
from app.core.forms import TooManyFields, parse_urlencoded

PIECES = st.sampled_from(
    [*"%+=&aZ09fF \r\n\t.é", "%2", "%4A", "%zz", "%0d%0A", "%%", "%3D", "%%41", "%4%41", "&&", "=="]
)


def decode(body: bytes, cuts: list[int], *, memory_bytes: int, max_fields: int = 100) -> object:
    """What the streaming decoder makes of `body` fed in pieces cut at `cuts`."""
    decoder = FormDecoder(max_fields=max_fields, max_name_bytes=1000, memory_bytes=memory_bytes)
    spool = decoder.spool
    try:
        edges = [0, *sorted(set(cuts)), len(body)]
        for start, end in itertools.pairwise(edges):
            decoder.feed(body[start:end])
            if spool.flush_due:
                spool.flush()
        try:
            decoder.close()
        except TooManyFields:
            return TooManyFields
        spool.flush(final=True)
        return [(name, spool.read(start, end)) for name, start, end in decoder.fields]
    finally:
        spool.close()


def expected(body: bytes, *, max_fields: int = 100) -> object:
    try:
        return parse_urlencoded(body, max_fields=max_fields)
    except TooManyFields:
        return TooManyFields


@settings(max_examples=1500, deadline=None)
@given(
    pieces=st.lists(PIECES, max_size=60),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=12),
    memory_bytes=st.sampled_from([0, 3, 1 << 20]),
    max_fields=st.sampled_from([3, 100]),
)
def test_any_body_any_chunking_matches_the_fast_decoder(
    pieces: list[str], cuts: list[int], memory_bytes: int, max_fields: int
) -> None:
    body = "".join(pieces).encode()
    cuts = [c for c in cuts if c < len(body)]
    got = decode(body, cuts, memory_bytes=memory_bytes, max_fields=max_fields)
    assert got == expected(body, max_fields=max_fields)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 4096])
def test_a_mandrill_body_cut_everywhere(chunk: int) -> None:
    value = b'[{"event":"inbound","msg":{"raw_msg":"a\\/b\\r\\n=3D %zz \xc3\xa9"}}]' * 20
    body = b"mandrill_events=" + quote_plus(value).encode() + b"&x=%%41&y"
    got = decode(body, list(range(0, len(body), chunk)), memory_bytes=64)
    assert got == parse_urlencoded(body, max_fields=100)
    assert got[0] == (b"mandrill_events", value)  # type: ignore[index]


def test_values_past_the_memory_budget_go_to_a_file_and_read_back() -> None:
    spool = FormSpool(memory_bytes=10)
    try:
        spool.append(b"0123456789")
        assert not spool.flush_due and not spool.on_disk
        spool.append(b"abcdef")
        assert spool.flush_due
        spool.flush()
        assert spool.on_disk and not spool.flush_due
        spool.append(b"XYZ")
        assert spool.read(8, 19) == b"89abcdefXYZ"
        assert b"".join(spool.chunks(0, spool.size)) == b"0123456789abcdefXYZ"
    finally:
        spool.close()


def test_a_name_past_its_limit_ends_decoding_and_close_says_why() -> None:
    decoder = FormDecoder(max_fields=100, max_name_bytes=8, memory_bytes=1 << 20)
    decoder.feed(b"a=1&abcdefgh")
    decoder.feed(b"i=2&")  # the ninth byte of the name
    decoder.feed(b"b=3")  # only counted from here on
    with pytest.raises(FieldNameTooLong):
        decoder.close()
    assert decoder.fields == [(b"a", 0, 1)]
