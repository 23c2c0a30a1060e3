"""A fast, exact decoder for application/x-www-form-urlencoded bodies.

Webhook bodies are one large percent-encoded field (~30 KB with thousands of escapes), and the
general form parsers decode it byte by byte in Python. Here a well-formed value is decoded in C
by `binascii.a2b_qp`: once `+` is a space and `%` is `=`, percent escapes are exactly
quoted-printable escapes (a well-formed value holds no literal `=`, CR or LF). Anything else
falls back to the standard library, so the result always equals `urllib.parse.unquote_plus`.
"""

from __future__ import annotations

import binascii
import re
from urllib.parse import unquote_to_bytes

# One pattern each: an alternation of the two is ten times slower on a 30 KB value.
_MALFORMED_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


class TooManyFields(ValueError):
    pass


def unquote_plus_bytes(value: bytes) -> bytes:
    value = value.replace(b"+", b" ")
    if b"=" in value or b"\r" in value or b"\n" in value or _MALFORMED_ESCAPE.search(value):
        return unquote_to_bytes(value)
    return binascii.a2b_qp(value.replace(b"%", b"="))


def parse_urlencoded(body: bytes, *, max_fields: int) -> list[tuple[bytes, bytes]]:
    """Name/value pairs as bytes, in order; blank values kept, empty pieces skipped."""
    if body.count(b"&") >= max_fields:
        raise TooManyFields(f"more than {max_fields} form fields")
    pairs: list[tuple[bytes, bytes]] = []
    for piece in body.split(b"&"):
        if not piece:
            continue
        name, _, value = piece.partition(b"=")
        pairs.append((unquote_plus_bytes(name), unquote_plus_bytes(value)))
    return pairs
