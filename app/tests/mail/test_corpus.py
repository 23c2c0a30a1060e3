"""The hostile corpus in app/tests/data/mail: every file parses, and each says what it tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.mail.parsed import ParsedEmail
from app.mail.parser import parse_inbound
from app.tests.mail.builders import assert_storable, inbound

CORPUS = Path(__file__).resolve().parent.parent / "data" / "mail"
FILES = sorted(CORPUS.glob("*.eml"))


def _parse(name: str) -> ParsedEmail:
    return parse_inbound(inbound((CORPUS / name).read_bytes()))


def test_the_corpus_is_there() -> None:
    assert {path.name for path in FILES} >= {
        "broken-boundary.eml",
        "unknown-charset.eml",
        "non-utf8-body.eml",
        "header-injection-filename.eml",
        "nested-deep.eml",
        "forwarded.eml",
        "inline-image.eml",
    }
    assert all(path.stat().st_size < 50_000 for path in FILES)


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_every_file_parses(path: Path) -> None:
    data = path.read_bytes()
    parsed = parse_inbound(inbound(data))
    assert parsed.raw == data
    assert parsed.message_id is not None
    assert_storable(parsed)


def test_broken_boundary() -> None:
    parsed = _parse("broken-boundary.eml")
    assert parsed.text_body is not None
    assert "The declared boundary never appears." in parsed.text_body


def test_unknown_charset() -> None:
    parsed = _parse("unknown-charset.eml")
    assert parsed.subject == "caf\ufffd subject"
    assert parsed.from_name == "Unknown Sender"
    assert parsed.text_body == "caf\ufffd in a charset nobody knows"
    assert parsed.html_body == "<p>a bytes-to-bytes codec named as a charset</p>"


def test_non_utf8_body() -> None:
    parsed = _parse("non-utf8-body.eml")
    assert parsed.subject == "Café sent as raw UTF-8, no encoded word"
    assert parsed.text_body == "valid: café; invalid: \ufffd\ufffd\ufffd and a NUL  here\r\n"


def test_header_injection_filenames() -> None:
    names = [a.filename for a in _parse("header-injection-filename.eml").attachments]
    assert names == ["html .txt", "passwd", "boot.ini", "htaccess", "invoicefdp.exe"]


def test_nested_deep() -> None:
    parsed = _parse("nested-deep.eml")
    assert parsed.text_body == "The bottom of the well."
    assert parsed.attachments == []


def test_forwarded() -> None:
    parsed = _parse("forwarded.eml")
    assert parsed.text_body == "See the message below."
    # The forwarded message stays one attachment, and the file inside it is one more.
    [forwarded, inner] = parsed.attachments
    assert (forwarded.filename, forwarded.content_type) == (
        "Quarterly numbers.eml",
        "message/rfc822",
    )
    assert forwarded.content.startswith(b"From: Original <orig@example.com>\r\n")
    assert b"INNER BODY must not become the outer body." in forwarded.content
    assert forwarded.parent is None
    assert (inner.filename, inner.content_type, inner.parent) == ("numbers.csv", "text/csv", 0)
    assert inner.content == b"q,total\r\n1,100"
    assert (inner.source_subject, inner.source_from) == ("Quarterly numbers", "orig@example.com")


def test_inline_image() -> None:
    parsed = _parse("inline-image.eml")
    assert parsed.text_body == "Plain version"
    assert parsed.html_body == '<p>HTML version <img src="cid:logo@kave.test"></p>'
    logo, terms = parsed.attachments
    assert (logo.filename, logo.inline, logo.content_id) == ("inline-1.png", True, "logo@kave.test")
    assert logo.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert (terms.filename, terms.inline, terms.content) == ("terms.pdf", False, b"%PDF-1.4\n")
