"""Decoding and cleaning of the strings a message yields, so that every one can be stored.

Everything here is total: it turns any input into a str without raising. Storage is the reason
for the cleaning: PostgreSQL refuses NUL in text and JSON, and a lone surrogate (how Python carries
undecodable bytes through str) cannot be encoded as UTF-8 at all.
"""

from __future__ import annotations

import binascii
import codecs
import re
from datetime import UTC, datetime
from email.errors import MessageError
from email.header import decode_header
from email.utils import parsedate_to_datetime
from typing import Any

# What the email package and the codecs raise on hostile input, of every kind (a display name
# that decodes to CR/LF: ValueError; a year past 9999: OverflowError; MIME nested past the
# recursion limit: RecursionError; "=?x?" words: IndexError, HeaderParseError, LookupError).
# Catching these, and not Exception, lets MemoryError and real bugs (NameError) through.
PARSE_ERRORS: tuple[type[Exception], ...] = (
    ValueError,  # with UnicodeError, binascii.Error and the email defects
    TypeError,
    LookupError,  # unknown charsets, IndexError, KeyError
    AttributeError,
    AssertionError,
    ArithmeticError,  # OverflowError
    RuntimeError,  # RecursionError
    MessageError,  # HeaderParseError, BoundaryError
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")
_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_BRACKETED = re.compile(r"<([^<>]*)>")
# Also an id whose ">" was lost (to a bound on the input, or by the sender).
_BRACKETED_OR_CUT = re.compile(r"<([^<>]*)(?:>|$)")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
# Codecs Python has that no mail charset is: Python escape syntax, "undefined" (always fails),
# idna, and punycode, whose decoder is quadratic (a 1 MB body would take minutes).
_NOT_MAIL_CODECS = frozenset(
    {"idna", "punycode", "raw-unicode-escape", "undefined", "unicode-escape"}
)

# Long enough for any real identifier; a bound keeps a hostile header from becoming a hostile key.
MAX_ID_CHARS = 512


def clean_text(value: str) -> str:
    """Replace lone surrogates and drop NUL; undecodable bytes that were UTF-8 are recovered."""
    if not value.isascii() and _SURROGATE.search(value):
        try:
            # Surrogate-escaped bytes (U+DC80..U+DCFF) are the raw bytes of a header or body the
            # parser could not decode; most often they are UTF-8 sent without an encoded word.
            value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return value.replace("\x00", "") if "\x00" in value else value


def clean_json(value: Any) -> Any:
    """A JSON value safe for any text or JSONB column: every string passed through clean_text."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_json(v) for v in value]
    return value


def encode_text(text: str) -> bytes:
    """The bytes a JSON string stands for: UTF-8, surrogate-escaped bytes restored.

    Mandrill sends the message (and text attachments) as JSON strings. For every valid string
    UTF-8 gives exactly the bytes that were sent, whatever errors handler is named. The handler
    only matters for lone surrogates, which no UTF-8 text contains: "surrogateescape" turns
    U+DC80..U+DCFF back into the single bytes 0x80..0xFF they stand for in Python (how bytes that
    did not decode are carried through a str), so such a string round-trips byte for byte rather
    than failing. Any other lone surrogate (a JSON `\\ud83d` without its pair) means nothing as a
    byte; the whole string is then encoded with "replace" (`?`), which cannot fail. Either way
    the result depends only on the input, so the same raw_msg always gives the same bytes and
    the same hash, and the common case costs one encode: one copy of the message.
    """
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def bounded(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[:limit]


def unfold(value: str) -> str:
    """A raw header value on one line: folding removed, stray CR/LF dropped."""
    return _FOLD.sub("", value).replace("\r", "").replace("\n", "")


def mail_codec(charset: object) -> str | None:
    """The Python codec a declared charset names; None when missing, unknown or not a charset
    any mail may name (see _NOT_MAIL_CODECS)."""
    name = charset.strip().strip('"').lower() if isinstance(charset, str) else ""
    if not name:
        return None
    try:
        codec = codecs.lookup(name).name
    except PARSE_ERRORS:
        return None
    return None if codec in _NOT_MAIL_CODECS else codec


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode with the declared charset, replacing what does not decode; unknown charsets and
    codecs that cannot replace fall back to UTF-8."""
    codec = mail_codec(charset)
    # UTF-8 is a superset of ASCII, and 8-bit text declared as ASCII is usually UTF-8.
    if codec and codec != "ascii":
        try:
            # bytes.decode refuses bytes-to-bytes codecs (base64, zlib, ...) with LookupError.
            return data.decode(codec, "replace")
        except PARSE_ERRORS:
            pass
    return data.decode("utf-8", "replace")


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words (`=?charset?b?...?=`); anything else is returned as is."""
    if "=?" not in value:
        return value
    try:
        parts = decode_header(value)
    except PARSE_ERRORS:  # malformed encoded words raise HeaderParseError and friends
        return value
    # Not make_header: it decodes with whatever codec a word names, and fails on unknown ones.
    return "".join(_decoded_word(chunk, charset) for chunk, charset in parts)


def _decoded_word(chunk: bytes | str, charset: str | None) -> str:
    if isinstance(chunk, str):
        return chunk
    if charset is not None:
        return decode_bytes(chunk, charset)
    try:
        # decode_header hands back the text between words encoded with raw-unicode-escape.
        return chunk.decode("raw-unicode-escape")
    except UnicodeDecodeError:
        return chunk.decode("latin-1")


def lenient_b64decode(data: bytes | str) -> bytes:
    """Base64 that never fails: what cannot be decoded is dropped, never raised."""
    try:
        # Non-strict mode skips line breaks and other non-alphabet characters without a copy.
        return binascii.a2b_base64(data)
    except (binascii.Error, ValueError):
        pass
    raw = data.encode("ascii", "ignore") if isinstance(data, str) else data
    cleaned = _NOT_BASE64.sub(b"", raw.translate(_URLSAFE_TO_STANDARD))
    if len(cleaned) % 4 == 1:  # a lone trailing character holds less than one byte
        cleaned = cleaned[:-1]
    return binascii.a2b_base64(cleaned + b"=" * (-len(cleaned) % 4))


def normalize_message_id(value: str, limit: int = MAX_ID_CHARS) -> str | None:
    """`<abc@host>` -> `abc@host`: the first bracketed id (or the whole value), without
    whitespace or control characters, at most `limit` characters."""
    value = clean_text(value[: limit * 4])
    for candidate in _BRACKETED_OR_CUT.findall(value) or [value]:
        ident = "".join(ch for ch in candidate if ch.isprintable() and not ch.isspace())
        if ident:
            return ident[:limit]
    return None


def message_ids(value: str) -> list[str]:
    """Every id of a References-style header, in order."""
    found = _BRACKETED.findall(value) or value.replace(",", " ").split()
    ids = (normalize_message_id(ident) for ident in found)
    return [ident for ident in ids if ident]


def normalize_content_type(value: object) -> str | None:
    """`Image/PNG; name=x` -> `image/png`; None for anything that is not a MIME type."""
    if not isinstance(value, str):
        return None
    value = value.partition(";")[0].strip().lower()
    return value if _CONTENT_TYPE.fullmatch(value) else None


def to_utc(value: datetime | None) -> datetime | None:
    """Aware UTC; a naive value (a `-0000` zone: "UTC, local time unknown") is taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):  # year 1 or 9999 pushed past the calendar by the zone
        return None


def parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return to_utc(parsedate_to_datetime(unfold(value)))
    except PARSE_ERRORS:  # ValueError, OverflowError, TypeError: all mean "no usable date"
        return None
