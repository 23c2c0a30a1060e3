"""The raw RFC 822 message: its header fields and a walk over its MIME tree.

The message is parsed by the standard library's feed parser with the default policy, except
that header values stay strings (bounded in length): the accessors used here (content type,
parameters, RFC 2231 file names) work on strings, and the structured header objects the
default policy would build on every access come from a parser that is quadratic on hostile
input. Header fields are decoded by app.mail.headers instead.
"""

from __future__ import annotations

import binascii
import mimetypes
import re
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from email import policy
from email.feedparser import BytesFeedParser
from email.message import Message

from app.mail.filenames import MAX_FILENAME_BYTES, fallback_filename, sanitize_filename
from app.mail.headers import MAX_HEADER_CHARS, addresses, collect, decoded, header_fields
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
from app.mail.tnef import is_tnef, tnef_files

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
# Files are taken out of forwarded messages this many levels deep; beyond, the .eml holds them
# (each level would store its inner files' bytes again).
_MAX_NESTED_MESSAGES = 8
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


@dataclass(frozen=True, slots=True)
class _Origin:
    """Where a part sits: inside which attachment (a forwarded message), of which message."""

    parent: int | None = None
    subject: str | None = None
    sender: str | None = None
    depth: int = 0


_TOP = _Origin()


def read_body(root: Message, raw: bytes) -> BodyParts:
    """Bodies and attachments, depth first in document order, without recursion.

    A forwarded message (`message/rfc822`) is one attachment, followed by the files inside it
    (and inside its own forwarded messages, up to _MAX_NESTED_MESSAGES deep), each pointing at
    the attachment it came out of; their bodies are not ours and are not read as bodies.
    """
    newline = raw.find(b"\n")
    linesep = "\r\n" if newline > 0 and raw[newline - 1 : newline] == b"\r" else "\n"
    body = BodyParts()
    stack: list[tuple[Message, _Origin]] = [(root, _TOP)]
    while stack:
        part, origin = stack.pop()
        ctype = _content_type(part)
        if part.is_multipart() and not ctype.startswith("message/"):
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend((c, origin) for c in reversed(children) if isinstance(c, Message))
            continue
        # A part the email package cannot even read is dropped; it never costs the message.
        with suppress(*PARSE_ERRORS):
            inner = _read_leaf(part, ctype, body, linesep, origin)
            if inner is not None:
                stack.append(inner)
    return body


def _read_leaf(
    part: Message, ctype: str, body: BodyParts, linesep: str, origin: _Origin
) -> tuple[Message, _Origin] | None:
    """Record the leaf; a forwarded message comes back to be walked in turn."""
    disposition = _guarded(part.get_content_disposition)
    filename = _guarded(part.get_filename)
    if ctype.startswith("multipart/"):
        # The boundary never appeared, so the undivided body text is all there is.
        ctype = "text/plain"
    if ctype in _BODY_TYPES and disposition != "attachment" and not filename:
        if origin.parent is not None:
            return None  # the forwarded message's own text: in its .eml, not a file
        if ctype == "text/plain" and body.text_body is None:
            body.text_body = _part_text(part)
            return None
        if ctype == "text/html" and body.html_body is None:
            body.html_body = _part_text(part)
            return None
    content_id = _content_id(part)
    # Inline: shown within the body by the sender's client. A forwarded message never is here,
    # since its body is kept apart from ours.
    inline = not ctype.startswith("message/") and (
        disposition == "inline" or (disposition is None and content_id is not None)
    )
    fallback = fallback_filename(
        "inline" if inline else "attachment", len(body.attachments) + 1, ctype
    )
    forwarded = ctype in ("message/rfc822", "message/global")
    if ctype.startswith("message/"):
        content = _message_bytes(part, ctype, linesep)
        if forwarded:
            # A forwarded message stays a message: its body is not merged into ours.
            fallback = "forwarded-message.eml"
            if not filename:
                filename = _forwarded_subject(part)
    else:
        content = _part_bytes(part)
    index = len(body.attachments)
    body.attachments.append(
        ParsedAttachment(
            filename=sanitize_filename(filename, fallback=fallback),
            content_type=ctype,
            content=content,
            content_id=content_id if inline else None,
            inline=inline,
            parent=origin.parent,
            source_subject=origin.subject,
            source_from=origin.sender,
        )
    )
    if is_tnef(ctype, filename):
        _add_tnef_files(body, index, origin)
    if forwarded and origin.depth < _MAX_NESTED_MESSAGES:
        inner = _inner_message(part, content)
        if inner is not None:
            return inner, _origin_of(inner, index, origin.depth + 1)
    return None


def _add_tnef_files(body: BodyParts, index: int, origin: _Origin) -> None:
    for number, (name, data) in enumerate(tnef_files(body.attachments[index].content), 1):
        ctype = _guess_type(name)
        body.attachments.append(
            ParsedAttachment(
                filename=sanitize_filename(
                    name, fallback=fallback_filename("attachment", number, ctype)
                ),
                content_type=ctype,
                content=data,
                content_id=None,
                inline=False,
                parent=index,
                source_subject=origin.subject,
                source_from=origin.sender,
            )
        )


def _guess_type(name: str | None) -> str:
    guessed = mimetypes.guess_type(name or "", strict=False)[0]
    return normalize_content_type(guessed) or "application/octet-stream"


def _inner_message(part: Message, content: bytes) -> Message | None:
    children = part.get_payload()
    inner = children[0] if isinstance(children, list) and children else None
    if isinstance(inner, Message):
        return inner
    # Sent base64-encoded (not allowed for message/*, but sent): parse the decoded bytes.
    return parse_message(content) if content else None


def _origin_of(inner: Message, parent: int, depth: int) -> _Origin:
    subject = _raw_header(inner, "subject")
    senders = addresses([v for k, v in inner.raw_items() if k.lower() == "from"][:1])
    return _Origin(
        parent=parent,
        subject=(decoded(subject, MAX_HEADER_CHARS).strip() or None) if subject else None,
        sender=senders[0].email if senders else None,
        depth=depth,
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
