"""sanitize_filename: whatever a sender calls an attachment, the name is safe to store and use."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.mail.filenames import fallback_filename, sanitize_filename


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("Résumé 2024 ✓.pdf", "Résumé 2024 ✓.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\boot.ini", "boot.ini"),
        ("C:\\Users\\me\\Desktop\\a.txt", "a.txt"),
        ("/absolute/path/", "fallback.bin"),
        (".htaccess", "htaccess"),
        ("...", "fallback.bin"),
        (".", "fallback.bin"),
        ("..", "fallback.bin"),
        ("dir/..", "fallback.bin"),
        ("  . hidden  ", "hidden"),
        ("a\r\nContent-Type: x.txt", "a Content-Type: x.txt"),
        ("tab\tand\x0bvertical", "tab and vertical"),
        ("nul\x00byte\x7f\x9f\x85.txt", "nulbyte .txt"),  # NEL (C1) is whitespace
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("many     spaces   .txt", "many spaces .txt"),
        ("=?utf-8?q?na=C3=AFve.pdf?=", "naïve.pdf"),
        ("=?utf-8?b?Li4vLi4vZXRjL3Bhc3N3ZA==?=", "passwd"),
        ("Cafe\u0301.txt", "Café.txt"),
        ("broken\udcff.txt", "broken\ufffd.txt"),
        ("", "fallback.bin"),
        (None, "fallback.bin"),
        ("\x00\x01\x02", "fallback.bin"),
    ],
)
def test_sanitize_filename(name: str | None, expected: str) -> None:
    assert sanitize_filename(name, fallback="fallback.bin") == expected


def test_long_names_keep_their_extension() -> None:
    name = "é" * 300 + ".pdf"
    result = sanitize_filename(name, fallback="x")
    assert result.endswith("é.pdf")
    assert len(result.encode()) <= 255
    assert result == "é" * 125 + ".pdf"  # 125 * 2 bytes + 4 bytes, no half character


def test_long_names_with_an_absurd_extension_are_cut_as_a_whole() -> None:
    result = sanitize_filename("a." + "b" * 400, fallback="x")
    assert result == ("a." + "b" * 400)[:255]


def test_a_bad_fallback_is_cleaned_too() -> None:
    assert sanitize_filename(None, fallback="../x\r\n.txt") == "x .txt"
    assert sanitize_filename(None, fallback="") == "attachment"


@pytest.mark.parametrize(
    ("prefix", "number", "content_type", "expected"),
    [
        ("attachment", 3, "application/octet-stream", "attachment-3"),
        ("inline", 1, "image/png", "inline-1.png"),
        ("attachment", 2, "application/pdf", "attachment-2.pdf"),
        ("attachment", 4, "text/plain", "attachment-4.txt"),
        ("attachment", 5, "application/x-unknown-thing", "attachment-5"),
    ],
)
def test_fallback_filename(prefix: str, number: int, content_type: str, expected: str) -> None:
    assert fallback_filename(prefix, number, content_type) == expected


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), st.text(), st.binary().map(lambda b: b.decode("latin-1"))))
@example("../" * 200 + "é" * 200 + ".tar.gz")
@example("\ud800" * 10)
@example("=?utf-8?b?Lg==?=")
def test_sanitize_filename_properties(name: str | None) -> None:
    result = sanitize_filename(name, fallback="fallback")
    assert result not in ("", ".", "..")
    assert "/" not in result and "\\" not in result
    assert not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in result)
    assert not result.startswith((".", " "))
    assert len(result.encode("utf-8")) <= 255
    assert sanitize_filename(result, fallback="fallback") == result  # idempotent
