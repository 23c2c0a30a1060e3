"""The raw RFC 822 message: its header fields and a walk over its MIME tree.

The message is parsed by the standard library's feed parser with the default policy, except
that header values stay strings (bounded in length): the accessors used here (content type,
parameters, RFC 2231 file names) work on strings, and the structured header objects the
default policy would build on every access come from a parser that is quadratic on hostile
input. Header fields are decoded by app.mail.headers instead.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from contextlib import suppress
from email import policy
from email.feedparser import BytesFeedParser
from email.message import Message

from app.mail.filenames import MAX_FILENAME_BYTES, fallback_filename, sanitize_filename
from app.mail.headers import collect, decoded, header_fields
from app.mail.parsed import BodyParts, HeaderFields, ParsedAttachment
from app.mail.text import (
    PARSE_ERRORS,
    clean_text,
    decode_bytes,
    lenient_b64decode,
    mail_codec,
    normalize_content_type,
    normalize_message_id,
    unfold,
)

_CHUNK_BYTES = 1 << 20
_BOUNDARY = re.compile(rb"boundary", re.IGNORECASE)
_MAX_BOUNDARY_CHECKS = 100_000_000  # about 15 s of the parser's time
_MAX_DEPTH = 1000  # the parser hits the recursion limit before this
# Content-Type and Content-Disposition of real mail fit in a few hundred characters and a few
# parameters. The stdlib's parameter splitter rescans the value for every semicolon, so a
# hostile value is cut to a bounded length and parameter count before any accessor sees it.
_MAX_PARSED_HEADER_CHARS = 4096
_MAX_PARAMETERS = 64


def _unparsed(name: str, value: str) -> str:
    value = value[:_MAX_PARSED_HEADER_CHARS]
    if value.count(";") > _MAX_PARAMETERS:
        value = ";".join(value.split(";", _MAX_PARAMETERS)[:_MAX_PARAMETERS])
    return value


_PARSE_POLICY = policy.default.clone(header_factory=_unparsed)
_BODY_TYPES = ("text/plain", "text/html")
# Forwarded messages are written back with their header lines as received (no refolding),
# in the line ending of the outer message.
_WRITE_POLICIES = {
    sep: policy.default.clone(linesep=sep, refold_source="none") for sep in ("\n", "\r\n")
}


def parse_message(raw: bytes) -> Message:
    """Raises ValueError when the message would take too long to parse, RecursionError when it
    nests deeper than the stdlib parser recurses."""
    _check_parse_cost(raw)
    # BytesParser.parsebytes decodes the whole message into one str and wraps that in a
    # StringIO, which holds it again at 4 bytes a character: several times the message size
    # for a 30 MB mail. Feeding the same parser in chunks keeps one decoded copy, the parts.
    parser = BytesFeedParser(policy=_PARSE_POLICY)
    view = memoryview(raw)
    for start in range(0, len(raw), _CHUNK_BYTES):
        parser.feed(view[start : start + _CHUNK_BYTES].tobytes())
    return parser.close()


def _check_parse_cost(raw: bytes) -> None:
    # The feed parser tests each line against every enclosing boundary: its work is lines times
    # nesting depth (100 levels over a million empty lines: 15 s). The depth is at most the
    # number of boundary parameters, and real mail is far from the budget (a 25 MB attachment is
    # 700k line ends at depth 3), so only a message built to be slow is refused.
    lines = raw.count(b"\n") + raw.count(b"\r")
    if lines * _MAX_DEPTH <= _MAX_BOUNDARY_CHECKS:
        return
    boundaries = sum(1 for _ in _BOUNDARY.finditer(raw))
    if lines * boundaries > _MAX_BOUNDARY_CHECKS:
        raise ValueError(f"{boundaries} boundaries over {lines} lines: too costly to parse")


def read_headers(root: Message) -> HeaderFields:
    return header_fields(collect(root.raw_items()))


def read_body(root: Message, raw: bytes) -> BodyParts:
    """Bodies and attachments, depth first in document order, without recursion."""
    newline = raw.find(b"\n")
    linesep = "\r\n" if newline > 0 and raw[newline - 1 : newline] == b"\r" else "\n"
    body = BodyParts()
    stack = [root]
    while stack:
        part = stack.pop()
        ctype = _content_type(part)
        if part.is_multipart() and not ctype.startswith("message/"):
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend(c for c in reversed(children) if isinstance(c, Message))
            continue
        # A part the email package cannot even read is dropped; it never costs the message.
        with suppress(*PARSE_ERRORS):
            _read_leaf(part, ctype, body, linesep)
    return body


def _read_leaf(part: Message, ctype: str, body: BodyParts, linesep: str) -> None:
    disposition = _guarded(part.get_content_disposition)
    filename = _guarded(part.get_filename)
    if ctype.startswith("multipart/"):
        # The boundary never appeared, so the undivided body text is all there is.
        ctype = "text/plain"
    if ctype in _BODY_TYPES and disposition != "attachment" and not filename:
        if ctype == "text/plain" and body.text_body is None:
            body.text_body = _part_text(part)
            return
        if ctype == "text/html" and body.html_body is None:
            body.html_body = _part_text(part)
            return
    content_id = _content_id(part)
    # Inline: shown within the body by the sender's client. A forwarded message never is here,
    # since its body is kept apart from ours.
    inline = not ctype.startswith("message/") and (
        disposition == "inline" or (disposition is None and content_id is not None)
    )
    fallback = fallback_filename(
        "inline" if inline else "attachment", len(body.attachments) + 1, ctype
    )
    if ctype.startswith("message/"):
        content = _message_bytes(part, ctype, linesep)
        if ctype in ("message/rfc822", "message/global"):
            # A forwarded message stays a message: its body is not merged into ours.
            fallback = "forwarded-message.eml"
            if not filename:
                filename = _forwarded_subject(part)
    else:
        content = _part_bytes(part)
    body.attachments.append(
        ParsedAttachment(
            filename=sanitize_filename(filename, fallback=fallback),
            content_type=ctype,
            content=content,
            content_id=content_id if inline else None,
            inline=inline,
        )
    )


def _guarded(read: Callable[[], object]) -> str | None:
    try:
        value = read()
    except PARSE_ERRORS:
        return None
    return value if isinstance(value, str) and value else None


def _raw_header(msg: Message, name: str) -> str | None:
    """The first `name` header as received (unparsed), or None."""
    wanted = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == wanted:
            return value if isinstance(value, str) else str(value)
    return None


def _content_type(part: Message) -> str:
    try:
        value = part.get_content_type()
    except PARSE_ERRORS:
        value = None
    return normalize_content_type(value) or "application/octet-stream"


def _content_id(part: Message) -> str | None:
    value = _raw_header(part, "content-id")
    return normalize_message_id(value) if value else None


def _transfer_encoding(part: Message) -> str:
    value = _raw_header(part, "content-transfer-encoding")
    return unfold(value).strip().lower() if value else ""


def _part_bytes(part: Message) -> bytes:
    if _transfer_encoding(part) == "base64":
        try:
            # get_payload() decodes a payload that holds 8-bit bytes with the part's charset,
            # whatever codec it names (punycode is quadratic): only a safe one may get there.
            charset = part.get_param("charset")
            safe = not isinstance(charset, str) or mail_codec(charset) is not None
            payload = part.get_payload() if safe else None
        except PARSE_ERRORS:
            payload = None
        if isinstance(payload, str):
            # Straight from the encoded str: the stdlib path splits, joins and pads copies of
            # it first, and returns the encoded text itself when the length is off.
            return lenient_b64decode(payload)
    try:
        data = part.get_payload(decode=True)
    except PARSE_ERRORS:
        return b""
    return data if isinstance(data, bytes) else b""


def _part_text(part: Message) -> str:
    try:
        charset = part.get_content_charset()
    except PARSE_ERRORS:
        charset = None
    return clean_text(decode_bytes(_part_bytes(part), charset))


def _message_bytes(part: Message, ctype: str, linesep: str) -> bytes:
    write_policy = _WRITE_POLICIES[linesep]
    try:
        children = part.get_payload()
        inner = children[0] if isinstance(children, list) and children else None
        if ctype != "message/delivery-status" and isinstance(inner, Message):
            data = inner.as_bytes(policy=write_policy)
        else:
            # The part itself, minus its own header block (which may be empty).
            data = part.as_bytes(policy=write_policy)
            sep = linesep.encode()
            if data.startswith(sep):
                data = data[len(sep) :]
            else:
                end = data.find(sep * 2)
                data = data[end + 2 * len(sep) :] if end >= 0 else b""
    except PARSE_ERRORS:
        return b""
    encoding = _transfer_encoding(part)
    # Not allowed for message/*, but sent: the parser took the encoded text for a message.
    if encoding == "base64":
        return lenient_b64decode(data)
    if encoding == "quoted-printable":
        return binascii.a2b_qp(data)
    return data


def _forwarded_subject(part: Message) -> str | None:
    try:
        children = part.get_payload()
        inner = children[0] if isinstance(children, list) and children else None
        subject = _raw_header(inner, "subject") if isinstance(inner, Message) else None
    except PARSE_ERRORS:
        return None
    subject = decoded(subject, MAX_FILENAME_BYTES).strip() if subject else None
    return f"{subject}.eml" if subject else None
