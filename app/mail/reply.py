"""The new words of a message: its text without quoted history and without the signature.

A library finds where the history starts; a small pre-step first removes what both candidate
libraries were measured to miss (docs/agent-fields.md): `>`-quoted lines and the attribution
line above them in any language ("Am ... schrieb ...:", "El ... escribió:"), Outlook header
blocks without a separator line ("From:/Sent:", "Von:/Gesendet:", ...), the "-- " signature
and "Sent from my iPhone" lines. The library then catches what the pre-step does not know.
Pure and total: any text in, a str out.
"""

from __future__ import annotations

import re

from mailparser_reply import EmailReplyParser  # type: ignore[import-untyped]

from app.mail.html_text import html_to_text

# Beyond this the text is cut first: quoted history of a long thread is not worth the regexes.
MAX_REPLY_INPUT_CHARS = 200_000
_LANGUAGES = ["en", "de", "fr", "es", "it", "nl"]
_PARSER = EmailReplyParser(languages=_LANGUAGES)

_QUOTED = re.compile(r"^[ \t]*>")
_ORIGINAL_MESSAGE = re.compile(
    r"^[ \t]*-{3,}[ \t]*(original message|ursprüngliche nachricht|message d'origine|"
    r"mensaje original|messaggio originale|oorspronkelijk bericht|forwarded message|"
    r"weitergeleitete nachricht)[ \t]*-{3,}",
    re.IGNORECASE,
)
_HEADER_FROM = re.compile(r"^[ \t]*\*?(from|von|de|da|van|från|od)\*?[ \t]*:[ \t]*\S", re.I)
_HEADER_NEXT = re.compile(
    r"^[ \t]*\*?(sent|date|to|subject|gesendet|datum|an|betreff|envoyé|à|objet|"
    r"enviado|fecha|para|asunto|inviato|data|oggetto|verzonden|aan|onderwerp)\*?[ \t]*:",
    re.I,
)
_RULE = re.compile(r"^[ \t]*[_\-=]{8,}[ \t]*$")
_SIGNATURE = re.compile(r"^(-- ?|—)$")
_SENT_FROM = re.compile(
    r"^[ \t]*(sent from my|sent from outlook|get outlook for|gesendet von meinem|von meinem .* "
    r"gesendet|envoyé de mon|enviado desde mi|inviato da)",
    re.IGNORECASE,
)


def reply_text(text_body: str | None, html_body: str | None) -> str | None:
    """The message's own new text, or None when it has no text at all."""
    text = text_body if text_body and text_body.strip() else None
    if text is None and html_body and html_body.strip():
        text = html_to_text(html_body[: MAX_REPLY_INPUT_CHARS * 4])
    if not text:
        return None
    text = text[:MAX_REPLY_INPUT_CHARS].replace("\r\n", "\n").replace("\r", "\n")
    cleaned = strip_known_history(text)
    found = library_reply(cleaned)
    return (found or cleaned).strip() or None


def library_reply(text: str) -> str:
    """The first reply's body as the library sees it (headers and signature removed)."""
    if not text.strip():
        return ""
    try:
        message = _PARSER.read(text=text)
    except (RecursionError, ValueError, IndexError):  # a regex on hostile input
        return text
    return message.replies[0].body if message.replies else text


def strip_known_history(text: str) -> str:
    """Remove quoted lines with their attribution, and cut at a forwarded or original message
    header block, a signature separator or a "sent from" line."""
    lines = text.split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        if _cuts_here(lines, index):
            break
        if _QUOTED.match(line):
            _drop_attribution(kept)
            continue
        kept.append(line)
    return "\n".join(kept).strip()


def _cuts_here(lines: list[str], index: int) -> bool:
    line = lines[index]
    if _ORIGINAL_MESSAGE.match(line) or _SIGNATURE.match(line) or _SENT_FROM.match(line):
        return True
    if _HEADER_FROM.match(line):
        following = [nxt for nxt in lines[index + 1 : index + 4] if nxt.strip()]
        return any(_HEADER_NEXT.match(nxt) for nxt in following)
    if _RULE.match(line):
        # An Outlook rule right above a From: header block belongs to the cut.
        following = [nxt for nxt in lines[index + 1 : index + 3] if nxt.strip()]
        return bool(following) and _HEADER_FROM.match(following[0]) is not None
    return False


def _drop_attribution(kept: list[str]) -> None:
    """Before the first line of a quote block: remove the "... wrote:" line above it (with the
    blank lines between), also when the client wrapped it over two lines."""
    end = len(kept)
    while end and not kept[end - 1].strip():
        end -= 1
    if not end or not kept[end - 1].rstrip().endswith(":"):
        return
    start = end - 1
    if start and kept[start - 1].rstrip().endswith(("<", ",")):
        start -= 1
    del kept[start:]
