"""parse_inbound on raw messages: the source of truth whenever raw_msg is present."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from email.message import EmailMessage

from app.mail.parsed import Address
from app.mail.parser import parse_inbound
from app.mail.text import decode_words
from app.tests.mail.builders import assert_storable, inbound, sha256

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _basic() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Zoë Sender <zoe@example.com>"
    message["To"] = 'inbox@kave.test, "Doe, Jane" <jane@example.com>'
    message["Cc"] = "cc@example.com"
    message["Reply-To"] = "replies@example.com"
    message["Subject"] = "Résumé 2024 ✓ — 日本語"
    message["Date"] = "Tue, 02 Jan 2024 10:00:00 +0100"
    message["Message-ID"] = "<basic-1@example.com>"
    message["In-Reply-To"] = "<parent@example.com>"
    message["References"] = "<root@example.com> <parent@example.com>"
    message["List-Id"] = "Kave tests <tests.kave.test>"
    message["X-Mailer"] = "pytest"
    message.set_content("Plain body é\n")
    message.add_alternative("<p>HTML body é</p>\n", subtype="html")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="Résumé 2024 ✓.pdf")
    return message


def test_multipart_text_html_attachment() -> None:
    parsed = parse_inbound(inbound(_basic(), email="inbox@kave.test"))

    assert parsed.text_body == "Plain body é\n"
    assert parsed.html_body == "<p>HTML body é</p>\n"
    [attachment] = parsed.attachments
    assert sha256(attachment.content) == sha256(PDF)
    assert attachment.content_type == "application/pdf"
    assert attachment.filename == "Résumé 2024 ✓.pdf"
    assert (attachment.inline, attachment.content_id) == (False, None)
    assert_storable(parsed)


def test_header_fields() -> None:
    message = _basic()
    parsed = parse_inbound(inbound(message))

    assert parsed.raw == message.as_bytes()
    assert parsed.subject == "Résumé 2024 ✓ — 日本語"
    assert (parsed.from_address, parsed.from_name) == ("zoe@example.com", "Zoë Sender")
    assert parsed.to == [
        Address("inbox@kave.test", None),
        Address("jane@example.com", "Doe, Jane"),
    ]
    assert parsed.cc == [Address("cc@example.com", None)]
    assert parsed.reply_to == [Address("replies@example.com", None)]
    assert parsed.sent_at == datetime(2024, 1, 2, 9, 0, tzinfo=UTC)
    assert parsed.message_id == "basic-1@example.com"
    assert parsed.in_reply_to == "parent@example.com"
    assert parsed.references == ["root@example.com", "parent@example.com"]
    assert parsed.headers["Subject"] == "Résumé 2024 ✓ — 日本語"
    assert parsed.headers["List-Id"] == "Kave tests <tests.kave.test>"
    assert parsed.headers["Content-Type"].startswith("multipart/mixed")
    assert set(parsed.headers) <= {
        "Message-ID",
        "Date",
        "From",
        "To",
        "Cc",
        "Reply-To",
        "Subject",
        "In-Reply-To",
        "References",
        "Return-Path",
        "List-Id",
        "List-Unsubscribe",
        "Auto-Submitted",
        "Precedence",
        "X-Mailer",
        "Content-Type",
    }
    assert "MIME-Version" not in parsed.headers


def test_rfc2047_and_rfc2231_on_the_wire() -> None:
    raw = (
        "From: =?utf-8?b?Wm/Dqw==?= <zoe@example.com>\r\n"
        "Subject: =?utf-8?q?R=C3=A9sum=C3=A9_2024_=E2=9C=93?=\r\n"
        "Content-Type: application/pdf\r\n"
        "Content-Disposition: attachment;\r\n"
        " filename*=utf-8''R%C3%A9sum%C3%A9%202024%20%E2%9C%93.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{base64.b64encode(PDF).decode()}\r\n"
    )
    parsed = parse_inbound(inbound(raw))

    assert parsed.subject == "Résumé 2024 ✓"
    assert parsed.from_name == "Zoë"
    [attachment] = parsed.attachments
    assert attachment.filename == "Résumé 2024 ✓.pdf"
    assert sha256(attachment.content) == sha256(PDF)
    assert parsed.text_body is None


def test_encoded_word_filename_and_name_parameter() -> None:
    raw = (
        "Subject: x\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\n"
        'Content-Type: application/pdf; name="=?utf-8?q?na=C3=AFve.pdf?="\r\n\r\n'
        "data\r\n"
        "--b--\r\n"
    )
    [attachment] = parse_inbound(inbound(raw)).attachments
    assert attachment.filename == "naïve.pdf"


def test_nested_mixed_alternative_related_inline_image() -> None:
    message = EmailMessage()
    message["Subject"] = "nested"
    message.set_content("plain")
    message.add_alternative('<p><img src="cid:logo@kave.test"></p>', subtype="html")
    alternatives = message.get_payload()
    assert isinstance(alternatives, list)
    html_part = alternatives[1]
    assert isinstance(html_part, EmailMessage)
    html_part.add_related(PNG, maintype="image", subtype="png", cid="<logo@kave.test>")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="terms.pdf")
    assert message.get_content_type() == "multipart/mixed"

    parsed = parse_inbound(inbound(message))

    assert parsed.text_body == "plain\n"
    assert parsed.html_body == '<p><img src="cid:logo@kave.test"></p>\n'
    image, pdf = parsed.attachments
    assert (image.inline, image.content_id, image.content_type) == (
        True,
        "logo@kave.test",
        "image/png",
    )
    assert image.filename == "inline-1.png"
    assert sha256(image.content) == sha256(PNG)
    assert (pdf.filename, pdf.inline, pdf.content_id) == ("terms.pdf", False, None)


def test_forwarded_message_is_an_attachment_not_a_body() -> None:
    inner = EmailMessage()
    inner["From"] = "orig@example.com"
    inner["Subject"] = "Quarterly numbers"
    inner.set_content("INNER BODY")
    inner.add_attachment(b"q,total\n1,100\n", maintype="text", subtype="csv", filename="n.csv")
    outer = EmailMessage()
    outer["Subject"] = "Fwd: Quarterly numbers"
    outer.set_content("See below.")
    outer.add_attachment(inner)

    parsed = parse_inbound(inbound(outer))

    assert parsed.text_body == "See below.\n"
    assert parsed.html_body is None
    # The .eml, then the file inside it (pointing at the .eml), never the inner body.
    [forwarded, csv] = parsed.attachments
    assert (csv.filename, csv.parent, csv.content) == ("n.csv", 0, b"q,total\n1,100\n")
    assert forwarded.content_type == "message/rfc822"
    assert forwarded.filename == "Quarterly numbers.eml"
    assert not forwarded.inline
    assert forwarded.content.startswith(b"From: orig@example.com\n")
    reparsed = parse_inbound(inbound(forwarded.content))
    assert reparsed.text_body == "INNER BODY\n"
    assert [a.filename for a in reparsed.attachments] == ["n.csv"]


def test_forwarded_message_without_subject_gets_the_default_name() -> None:
    inner = EmailMessage()
    inner.set_content("no subject here")
    outer = EmailMessage()
    outer.set_content("fwd")
    outer.add_attachment(inner)

    [forwarded] = parse_inbound(inbound(outer)).attachments
    assert forwarded.filename == "forwarded-message.eml"


def test_base64_encoded_forwarded_message_is_decoded() -> None:
    inner = b"From: orig@example.com\r\nSubject: inner\r\n\r\ninner body\r\n"
    raw = (
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nouter\r\n"
        "--b\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n"
        'Content-Disposition: attachment; filename="fwd.eml"\r\n\r\n'
        f"{base64.encodebytes(inner).decode()}\r\n"
        "--b--\r\n"
    )
    [forwarded] = parse_inbound(inbound(raw)).attachments
    assert forwarded.filename == "fwd.eml"
    assert forwarded.content == inner


def test_delivery_status_report_keeps_its_body() -> None:
    raw = (
        "Subject: Undelivered Mail\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nIt bounced.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.com\r\n\r\n"
        "Final-Recipient: rfc822; gone@example.com\r\nStatus: 5.1.1\r\n"
        "--b--\r\n"
    )
    parsed = parse_inbound(inbound(raw))
    assert parsed.text_body == "It bounced."
    [report] = parsed.attachments
    assert report.content_type == "message/delivery-status"
    assert report.filename == "attachment-1"
    assert b"Reporting-MTA: dns; mx.example.com" in report.content
    assert b"Status: 5.1.1" in report.content
    assert not report.content.startswith(b"Content-Type")


def test_folded_and_odd_references() -> None:
    raw = (
        "Message-ID:\r\n <folded@example.com>\r\n"
        "In-Reply-To: <parent@example.com> (comment)\r\n"
        "References: <a@example.com>\r\n\t<b@example.com>,<c@example.com>\r\n\r\nx"
    )
    parsed = parse_inbound(inbound(raw))
    assert parsed.message_id == "folded@example.com"
    assert parsed.in_reply_to == "parent@example.com"
    assert parsed.references == ["a@example.com", "b@example.com", "c@example.com"]


def test_text_with_attachment_disposition_is_an_attachment() -> None:
    message = EmailMessage()
    message.set_content("body")
    message.add_attachment("notes\n", filename="notes.txt")
    message.add_attachment("<b>page</b>", subtype="html", disposition="attachment")

    parsed = parse_inbound(inbound(message))

    assert parsed.text_body == "body\n"
    assert parsed.html_body is None
    notes, page = parsed.attachments
    assert (notes.filename, notes.content, notes.content_type) == (
        "notes.txt",
        b"notes\n",
        "text/plain",
    )
    assert (page.filename, page.content_type) == ("attachment-2.html", "text/html")


def test_second_plain_part_is_kept_as_an_attachment() -> None:
    raw = (
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nsecond\r\n"
        "--b--\r\n"
    )
    parsed = parse_inbound(inbound(raw))
    assert parsed.text_body == "first"
    [second] = parsed.attachments
    assert (second.filename, second.content) == ("attachment-1.txt", b"second")


def test_path_traversal_filename() -> None:
    message = EmailMessage()
    message.set_content("x")
    message.add_attachment(
        b"root:x:0:0", maintype="text", subtype="plain", filename="../../etc/passwd"
    )
    [attachment] = parse_inbound(inbound(message)).attachments
    assert attachment.filename == "passwd"


def test_filename_with_crlf_injection() -> None:
    raw = (
        "Content-Type: application/octet-stream\r\n"
        "Content-Disposition: attachment;"
        " filename*=utf-8''a%0D%0AContent-Type%3A%20x.txt\r\n\r\nbody\r\n"
    )
    [attachment] = parse_inbound(inbound(raw)).attachments
    assert "\r" not in attachment.filename and "\n" not in attachment.filename
    assert attachment.filename == "a Content-Type: x.txt"


def test_unknown_charset_and_invalid_utf8_never_crash() -> None:
    raw = (
        b"Subject: =?x-unknown?q?caf=E9?=\r\n"
        b"From: =?x-unknown?q?Caf=E9?= <cafe@example.com>\r\n"
        b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain; charset=x-unknown\r\n\r\ncaf\xe9\r\n"
        b"--b\r\nContent-Type: text/html; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n<p>bad \xff\xfe\xc3 bytes</p>\r\n"
        b"--b--\r\n"
    )
    parsed = parse_inbound(inbound(raw))

    assert parsed.raw == raw
    assert parsed.subject == "caf\ufffd"
    assert parsed.from_address == "cafe@example.com"
    assert parsed.text_body == "caf\ufffd"
    assert parsed.html_body == "<p>bad \ufffd\ufffd\ufffd bytes</p>"
    assert_storable(parsed)


def test_charset_that_is_not_a_text_encoding() -> None:
    for charset in ("base64", "idna", "rot13", "undefined", '"utf-8'):
        raw = f"Content-Type: text/plain; charset={charset}\r\n\r\nhello\r\n"
        assert parse_inbound(inbound(raw)).text_body == "hello\r\n", charset


def test_quadratic_codecs_are_never_used() -> None:
    # Python's punycode decoder is quadratic: these would take minutes if it were used.
    digits = "9" * 200_000  # 7 s for the punycode decoder; well under 1 s without it
    raw = (
        f"Subject: =?punycode?q?a-{digits[:100_000]}?=\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        f"--b\r\nContent-Type: text/plain; charset=punycode\r\n\r\na-{digits}\r\n"
        "--b\r\nContent-Type: application/octet-stream; charset=punycode\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n\xe9QUJD{digits}\r\n"
        "--b--\r\n"
    )
    started = time.perf_counter()
    parsed = parse_inbound(inbound(raw))
    assert time.perf_counter() - started < 5
    assert parsed.text_body == f"a-{digits}"
    assert parsed.subject is not None
    # The fallback decoder of a header the policy could not parse.
    assert decode_words(f"=?punycode?q?a-{digits}?=") == f"a-{digits}"
    assert time.perf_counter() - started < 5


def test_hostile_headers_take_linear_time() -> None:
    # The policy's structured parser needs ~25 s for 40 KB of `"a` in an address header, and
    # the parameter splitter rescans a Content-Type for each of its semicolons.
    semicolons, quotes = ";" * 100_000, '"a' * 50_000
    raw = (
        f"To: {quotes}\r\nFrom: {'<' * 50_000}\r\nCc: {'(' * 50_000}\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        f'--b\r\nContent-Type: application/pdf; name="{semicolons}"\r\n'
        f'Content-Disposition: attachment; filename="{semicolons}"\r\n\r\nx\r\n'
        "--b--\r\n"
    )
    started = time.perf_counter()
    parsed = parse_inbound(inbound(raw))
    assert time.perf_counter() - started < 3
    [attachment] = parsed.attachments
    assert attachment.content == b"x"
    assert_storable(parsed)


def test_raw_utf8_headers_without_encoded_words() -> None:
    raw = "Subject: Café ✓\r\nFrom: Jörg <j@example.de>\r\n\r\nbody\r\n".encode()
    parsed = parse_inbound(inbound(raw))
    assert parsed.subject == "Café ✓"
    assert parsed.from_name == "Jörg"


def test_broken_boundary_keeps_the_undivided_text() -> None:
    raw = (
        'Content-Type: multipart/mixed; boundary="declared"\r\n\r\n'
        "--actual\r\nContent-Type: text/plain\r\n\r\nhello\r\n--actual--\r\n"
    )
    parsed = parse_inbound(inbound(raw))
    assert parsed.text_body is not None
    assert "hello" in parsed.text_body
    assert parsed.attachments == []


def test_missing_closing_boundary_keeps_the_parts() -> None:
    raw = (
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
        "--b\r\nContent-Type: application/pdf\r\n"
        'Content-Disposition: attachment; filename="cut.pdf"\r\n\r\n%PDF'
    )
    parsed = parse_inbound(inbound(raw))
    assert parsed.text_body == "body"
    assert [(a.filename, a.content) for a in parsed.attachments] == [("cut.pdf", b"%PDF")]


def test_malformed_headers_still_give_what_they_can() -> None:
    raw = (
        "From: =?utf-8?q?Evil=0D=0AName?= <evil@example.com>\r\n"
        "To: =?utf-8?q?a=0Ab?= <to@example.com>, plain@example.com\r\n"
        "Date: Mon, 1 Jan 99999999999 00:00:00 +0000\r\n"
        "Message-ID: no-brackets@example.com\r\n"
        "\r\nbody\r\n"
    )
    parsed = parse_inbound(inbound(raw))

    assert parsed.from_address == "evil@example.com"
    assert parsed.from_name is not None
    assert "\r" not in parsed.from_name and "\n" not in parsed.from_name
    assert [a.email for a in parsed.to] == ["to@example.com", "plain@example.com"]
    assert parsed.sent_at is None
    assert parsed.message_id == "no-brackets@example.com"
    assert "From" in parsed.headers
    assert_storable(parsed)


def test_dates() -> None:
    cases = {
        "Tue, 2 Jan 2024 10:00:00 -0000": datetime(2024, 1, 2, 10, tzinfo=UTC),
        "2 Jan 2024 23:30:00 -0130": datetime(2024, 1, 3, 1, 0, tzinfo=UTC),
        "not a date": None,
        "Fri, 31 Dec 9999 23:59:59 -1200": None,
    }
    for header, expected in cases.items():
        parsed = parse_inbound(inbound(f"Date: {header}\r\n\r\nx"))
        assert parsed.sent_at == expected, header


def test_zero_byte_attachment() -> None:
    message = EmailMessage()
    message.set_content("body")
    message.add_attachment(
        b"", maintype="application", subtype="octet-stream", filename="empty.bin"
    )
    [attachment] = parse_inbound(inbound(message)).attachments
    assert (attachment.filename, attachment.content) == ("empty.bin", b"")


def test_invalid_base64_is_decoded_leniently() -> None:
    payload = base64.b64encode(b"hello world!").decode()
    raw = (
        "Content-Type: application/octet-stream\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{payload[:5]}*!{payload[5:]}A\r\n"  # junk characters, one stray character
    )
    [attachment] = parse_inbound(inbound(raw)).attachments
    assert attachment.content == b"hello world!"
    assert attachment.filename == "attachment-1"


def test_quoted_printable_body() -> None:
    raw = (
        "Content-Type: text/plain; charset=iso-8859-1\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        "caf=E9 au l=\r\nait\r\n"
    )
    assert parse_inbound(inbound(raw)).text_body == "café au lait\r\n"


def test_message_without_headers_or_body_structure() -> None:
    parsed = parse_inbound(inbound("just some text, no header at all"))
    assert parsed.text_body == "just some text, no header at all"
    assert parsed.subject is None
    assert parsed.headers == {}
