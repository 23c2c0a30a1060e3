"""Attachment file names: the sender's name made safe, or one made up from the content type.

A name is only ever metadata (blobs are keyed by content hash), but it ends up in download
headers, in file systems of whoever saves the file, and in a VARCHAR(255) column.
"""

from __future__ import annotations

import mimetypes
import unicodedata

from app.mail.text import clean_text, decode_words

MAX_FILENAME_BYTES = 255
# Longer "extensions" are not extensions: a name is then truncated as a whole.
_MAX_EXTENSION_BYTES = 32
# Bidirectional controls let "invoice\u202efdp.exe" display as "invoiceexe.pdf".
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
# The built-in table only (no /etc/mime.types), so every machine invents the same names.
_MIME_TYPES = mimetypes.MimeTypes()
_EXTENSIONS = {"application/octet-stream": "", "text/calendar": ".ics", "text/plain": ".txt"}


def sanitize_filename(name: str | None, *, fallback: str) -> str:
    """A safe, non-empty file name: the last path component of `name`, without control or
    bidi characters, without leading dots, whitespace collapsed, at most 255 UTF-8 bytes
    with the extension kept; `fallback` (cleaned the same way) when nothing is left."""
    cleaned = _clean(name) if name else ""
    return cleaned or _clean(fallback) or "attachment"


def fallback_filename(prefix: str, number: int, content_type: str) -> str:
    """`attachment-3.pdf`, `inline-1.png`: for parts that carry no name of their own."""
    extension = _EXTENSIONS.get(content_type)
    if extension is None:
        extension = _MIME_TYPES.guess_extension(content_type, strict=False) or ""
    return f"{prefix}-{number}{extension}"


def _clean(name: str) -> str:
    text = unicodedata.normalize("NFC", clean_text(decode_words(name)))
    text = text.replace("\\", "/").rpartition("/")[2]
    # Whitespace controls (CR, LF, TAB, ...) become spaces, other controls disappear.
    text = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or (unicodedata.category(ch) != "Cc" and ch not in _BIDI_CONTROLS)
    )
    text = " ".join(text.split()).lstrip(". ")
    return _truncate(text)


def _truncate(text: str) -> str:
    if len(text.encode("utf-8")) <= MAX_FILENAME_BYTES:
        return text
    stem, dot, extension = text.rpartition(".")
    suffix = dot + extension
    if not stem or len(suffix.encode("utf-8")) > _MAX_EXTENSION_BYTES:
        stem, suffix = text, ""
    budget = MAX_FILENAME_BYTES - len(suffix.encode("utf-8"))
    # Cutting bytes can split a character: "ignore" drops the partial one.
    stem = stem.encode("utf-8")[:budget].decode("utf-8", "ignore").rstrip()
    return stem + suffix
