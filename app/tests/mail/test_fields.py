"""The JSON side of an inbound event: the fallback without raw_msg, Mandrill's metadata,
extract_message_id and raw_message_bytes."""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime
from typing import Any

import pytest

from app.mail.errors import UnparseableMessage
from app.mail.parsed import Address
from app.mail.parser import extract_message_id, parse_inbound, raw_message_bytes
from app.tests.mail.builders import assert_storable, inbound, sha256

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
BINARY = bytes(range(256))


def _fields_only(**overrides: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "raw_msg": "",
        "headers": {
            "Message-Id": "<json-1@example.com>",
            "Date": "Wed, 3 Jan 2024 12:00:00 +0000",
            "Reply-To": "=?utf-8?q?R=C3=A9ponses?= <replies@example.com>",
            "In-Reply-To": "<parent@example.com>",
            "References": "<root@example.com> <parent@example.com>",
            "Received": ["from a", "from b"],
            "X-Mailer": "Mandrill",
        },
        "subject": "Résumé ✓",
        "from_email": "zoe@example.com",
        "from_name": "Zoë",
        "to": [["inbox@kave.test", None], ["jane@example.com", "Jane"]],
        "cc": [["cc@example.com", "CC"]],
        "text": "plain body",
        "html": "<p>html body</p>",
        "attachments": {
            "report.bin": {
                "name": "report.bin",
                "type": "application/octet-stream",
                "content": base64.b64encode(BINARY).decode(),
                "base64": True,
            },
            "notes.txt": {
                "name": "notes.txt",
                "type": "text/plain",
                "content": "naïve notes ✓",
                "base64": False,
            },
        },
        "images": {
            "ii_logo123": {
                "name": "ii_logo123",
                "type": "image/png",
                "content": base64.b64encode(PNG).decode(),
            },
        },
        "email": "inbox@kave.test",
    }
    msg.update(overrides)
    return msg


def test_missing_raw_msg_builds_from_the_fields() -> None:
    parsed = parse_inbound(_fields_only())

    assert parsed.raw is None
    assert parsed.message_id == "json-1@example.com"
    assert parsed.subject == "Résumé ✓"
    assert (parsed.from_address, parsed.from_name) == ("zoe@example.com", "Zoë")
    assert parsed.to == [Address("inbox@kave.test", None), Address("jane@example.com", "Jane")]
    assert parsed.cc == [Address("cc@example.com", "CC")]
    assert parsed.reply_to == [Address("replies@example.com", "Réponses")]
    assert parsed.sent_at == datetime(2024, 1, 3, 12, tzinfo=UTC)
    assert parsed.in_reply_to == "parent@example.com"
    assert parsed.references == ["root@example.com", "parent@example.com"]
    assert parsed.headers == {
        "Message-ID": "<json-1@example.com>",
        "Date": "Wed, 3 Jan 2024 12:00:00 +0000",
        "Reply-To": "Réponses <replies@example.com>",
        "In-Reply-To": "<parent@example.com>",
        "References": "<root@example.com> <parent@example.com>",
        "X-Mailer": "Mandrill",
    }
    assert (parsed.text_body, parsed.html_body) == ("plain body", "<p>html body</p>")
    report, notes, logo = parsed.attachments
    assert (report.filename, report.content_type, report.inline) == (
        "report.bin",
        "application/octet-stream",
        False,
    )
    assert sha256(report.content) == sha256(BINARY)
    assert notes.content == "naïve notes ✓".encode()
    assert (logo.filename, logo.inline, logo.content_id) == ("ii_logo123", True, "ii_logo123")
    assert sha256(logo.content) == sha256(PNG)
    assert_storable(parsed)


@pytest.mark.parametrize("raw_msg", [None, "", "   \r\n"])
def test_blank_raw_msg_counts_as_missing(raw_msg: str | None) -> None:
    msg = _fields_only(raw_msg=raw_msg)
    if raw_msg is None:
        del msg["raw_msg"]
    parsed = parse_inbound(msg)
    assert parsed.raw is None
    assert parsed.subject == "Résumé ✓"


def test_fields_tolerate_garbage() -> None:
    parsed = parse_inbound(
        _fields_only(
            headers=[],
            subject=None,
            from_email=42,
            from_name=["x"],
            to=[
                ["ok@example.com"],
                "bare@example.com",
                {"email": "d@example.com"},
                [None],
                [],
                7,
                ["", "empty"],
            ],
            cc="not a list",
            text=None,
            html={"no": "html"},
            attachments={
                "bad64": {"name": "bad64.bin", "content": "QUJD*!R", "base64": True},
                "nocontent": {"name": "x"},
                "odd": "not an object",
                "weird-type": {
                    "name": "w",
                    "type": "image/../../x",
                    "content": "",
                    "base64": False,
                },
            },
            images=["not", "a", "dict"],
        )
    )
    assert parsed.from_address is None
    assert parsed.subject is None
    assert [a.email for a in parsed.to] == ["ok@example.com", "bare@example.com", "d@example.com"]
    assert parsed.cc == []
    assert (parsed.text_body, parsed.html_body) == (None, None)
    assert [(a.filename, a.content, a.content_type) for a in parsed.attachments] == [
        ("bad64.bin", b"ABC", "application/octet-stream"),
        ("w", b"", "application/octet-stream"),
    ]
    assert parsed.headers == {}
    assert_storable(parsed)


def test_from_and_recipients_fall_back_to_headers() -> None:
    msg = _fields_only(
        headers={"From": "Header Sender <hs@example.com>", "To": "a@example.com, b@example.com"},
    )
    del msg["from_email"], msg["to"]
    parsed = parse_inbound(msg)
    assert (parsed.from_address, parsed.from_name) == ("hs@example.com", "Header Sender")
    assert [a.email for a in parsed.to] == ["a@example.com", "b@example.com"]


def test_metadata_comes_from_the_json_even_with_raw_msg() -> None:
    msg = inbound(
        "Subject: s\r\n\r\nbody",
        email="inbox@kave.test",
        spam_report={
            "score": 2.5,
            "matched_rules": [
                {"name": "URIBL_BLOCKED", "score": 0, "description": None},
                {"name": None, "score": "1.5", "description": "why"},
                "garbage",
            ],
        },
        spf={"result": "pass", "detail": "sender SPF authorized"},
        dkim={"signed": True, "valid": False},
        tags=["a", None, 3, "b"],
    )
    parsed = parse_inbound(msg)
    assert parsed.envelope_recipient == "inbox@kave.test"
    assert parsed.spam_score == 2.5
    assert parsed.spam_rules == [
        {"name": "URIBL_BLOCKED", "score": 0.0, "description": None},
        {"name": None, "score": 1.5, "description": "why"},
    ]
    assert (parsed.spf_result, parsed.spf_detail) == ("pass", "sender SPF authorized")
    assert (parsed.dkim_signed, parsed.dkim_valid) == (True, False)
    assert parsed.tags == ["a", "b"]


@pytest.mark.parametrize(
    "metadata",
    [
        {},
        {"email": None, "spam_report": None, "spf": None, "dkim": None, "tags": None},
        {"email": 5, "spam_report": [], "spf": "pass", "dkim": {"signed": "yes"}, "tags": "a"},
        {"spam_report": {"score": math.nan, "matched_rules": {"not": "a list"}}},
        {"spam_report": {"score": True}},
        {"spam_report": {"score": "1e999"}},
    ],
)
def test_metadata_tolerates_missing_and_wrong_types(metadata: dict[str, Any]) -> None:
    parsed = parse_inbound(inbound("Subject: s\r\n\r\nbody", **metadata))
    assert parsed.envelope_recipient is None
    assert parsed.spam_score is None
    assert parsed.spam_rules == []
    assert (parsed.spf_result, parsed.spf_detail) == (None, None)
    assert (parsed.dkim_signed, parsed.dkim_valid) == (None, None)
    assert parsed.tags == []


@pytest.mark.parametrize(
    ("msg", "reason"),
    [
        (None, "not a JSON object"),
        ([], "not a JSON object"),
        ("raw", "not a JSON object"),
        ({"raw_msg": 12}, "raw_msg is not a string"),
        ({"raw_msg": {"nested": True}}, "raw_msg is not a string"),
        ({}, "no raw_msg and no message fields"),
        ({"raw_msg": "", "email": "inbox@kave.test", "tags": ["x"]}, "no raw_msg"),
    ],
)
def test_hopeless_messages_raise_unparseable(msg: object, reason: str) -> None:
    with pytest.raises(UnparseableMessage, match=reason):
        parse_inbound(msg)


def test_extract_message_id_from_headers() -> None:
    assert extract_message_id({"headers": {"Message-Id": " <a@example.com> "}}) == "a@example.com"
    assert extract_message_id({"headers": {"MESSAGE-ID": "b@example.com"}}) == "b@example.com"


def test_extract_message_id_from_a_list_value() -> None:
    msg = {"headers": {"message-id": ["<first@example.com>", "<second@example.com>"]}}
    assert extract_message_id(msg) == "first@example.com"


def test_extract_message_id_from_the_raw_header_block() -> None:
    raw = (
        "Received: from mx.example.com\r\n"
        "Message-ID:\r\n <folded@example.com>\r\n"
        "Subject: x\r\n\r\n"
        "Message-ID: <in-the-body@example.com>\r\n"
    )
    assert extract_message_id({"headers": [], "raw_msg": raw}) == "folded@example.com"


def test_extract_message_id_never_reads_the_body() -> None:
    raw = "Subject: x\n\nMessage-ID: <in-the-body@example.com>\n" + "x" * 1_000_000
    assert extract_message_id({"raw_msg": raw}) is None


def test_extract_message_id_missing() -> None:
    assert extract_message_id({}) is None
    assert extract_message_id({"headers": {"Message-ID": "<>"}, "raw_msg": ""}) is None
    assert extract_message_id({"headers": {"Message-ID": 5}, "raw_msg": None}) is None
    assert extract_message_id({"raw_msg": "\r\n\r\nMessage-ID: <body@example.com>"}) is None


def test_extract_message_id_is_bounded() -> None:
    ident = extract_message_id({"headers": {"Message-ID": "<" + "a" * 5000 + "@x>"}})
    assert ident == "a" * 512


def test_extract_message_id_agrees_with_the_parser() -> None:
    raw = "Message-ID: <Same.ID+1@Example.COM>\r\nSubject: s\r\n\r\nbody"
    assert extract_message_id({"raw_msg": raw}) == parse_inbound({"raw_msg": raw}).message_id


def test_raw_message_bytes() -> None:
    assert raw_message_bytes("Subject: ✓\r\n") == "Subject: ✓\r\n".encode()
    # Surrogate-escaped bytes come back byte for byte.
    original = b"Subject: \xff\xfe latin \xe9\r\n\r\n\x80"
    assert raw_message_bytes(original.decode("utf-8", "surrogateescape")) == original
    # A lone surrogate that stands for no byte cannot fail the encoding.
    assert raw_message_bytes("a\ud83db") == b"a?b"


def test_raw_msg_with_lone_surrogates_parses() -> None:
    parsed = parse_inbound({"raw_msg": "Subject: broken \ud83d pair\r\n\r\nbody \udfff"})
    assert parsed.subject == "broken ? pair"
    assert parsed.text_body == "body ?"
    assert_storable(parsed)
