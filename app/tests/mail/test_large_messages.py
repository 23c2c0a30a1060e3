"""Size and shape extremes: a 20 MB attachment, a thousand attachments, deep nesting."""

from __future__ import annotations

import os
import time
import tracemalloc
from email.message import EmailMessage

import pytest

from app.mail.parser import parse_inbound
from app.tests.mail.builders import inbound, sha256


@pytest.mark.slow
def test_20_mb_attachment_is_byte_exact_and_not_copied_over_and_over() -> None:
    payload = os.urandom(20 * 1024 * 1024)
    message = EmailMessage()
    message["Subject"] = "big"
    message.set_content("see attachment")
    message.add_attachment(payload, maintype="application", subtype="zip", filename="big.zip")
    msg = inbound(message)
    del message
    raw_size = len(msg["raw_msg"])

    tracemalloc.start()
    try:
        parsed = parse_inbound(msg)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    [attachment] = parsed.attachments
    assert sha256(attachment.content) == sha256(payload)
    assert attachment.filename == "big.zip"
    assert parsed.text_body == "see attachment\n"
    # The raw bytes, the encoded part text and the decoded attachment are unavoidable: this
    # peaks near 4x the raw size, where BytesParser.parsebytes (one str read back through a
    # StringIO) peaked near 9x.
    assert peak < 5 * raw_size, f"peak {peak / raw_size:.1f}x the raw message"


def test_a_thousand_attachments() -> None:
    message = EmailMessage()
    message.set_content("many")
    for index in range(1000):
        message.add_attachment(
            index.to_bytes(2, "big"),
            maintype="application",
            subtype="octet-stream",
            filename=f"part-{index}.bin",
        )
    parsed = parse_inbound(inbound(message))
    assert len(parsed.attachments) == 1000
    assert parsed.attachments[999].filename == "part-999.bin"
    assert [a.content for a in parsed.attachments] == [i.to_bytes(2, "big") for i in range(1000)]


def _nested(depth: int) -> str:
    lines = ["Subject: deep", "Message-ID: <deep@example.com>"]
    for level in range(depth):
        lines += [f'Content-Type: multipart/mixed; boundary="b{level}"', "", f"--b{level}"]
    lines += ["Content-Type: text/plain", "", "bottom"]
    lines += [f"--b{level}--" for level in reversed(range(depth))]
    return "\r\n".join(lines)


def test_sixty_levels_of_nesting() -> None:
    parsed = parse_inbound(inbound(_nested(60)))
    assert parsed.text_body == "bottom"


def test_nesting_beyond_the_stdlib_parser_falls_back_to_the_fields() -> None:
    # The stdlib parser recurses once per level and gives up near the recursion limit.
    msg = inbound(
        _nested(1200),
        subject="deep",
        text="Mandrill's text",
        headers={"Message-Id": "<deep@example.com>"},
    )
    parsed = parse_inbound(msg)
    assert parsed.raw == msg["raw_msg"].encode()
    assert parsed.text_body == "Mandrill's text"
    assert parsed.message_id == "deep@example.com"


def test_a_message_built_to_be_slow_falls_back_to_the_fields() -> None:
    # 100 levels over a million lines would keep the stdlib parser busy for about 15 s.
    raw = _nested(100).replace("bottom", "\r\n" * 1_000_000)
    msg = inbound(raw, text="Mandrill's text", headers={"Message-Id": "<deep@example.com>"})
    started = time.perf_counter()
    parsed = parse_inbound(msg)
    assert time.perf_counter() - started < 3
    assert parsed.text_body == "Mandrill's text"
    assert parsed.raw is not None


def test_consuming_parse_hands_the_raw_text_over_and_parses_the_same() -> None:
    message = EmailMessage()
    message["Subject"] = "handed over"
    message.set_content("body text")
    message.add_attachment(os.urandom(2048), maintype="application", subtype="octet-stream")
    kept, consumed = inbound(message.as_string()), inbound(message.as_string())

    expected = parse_inbound(kept)
    parsed = parse_inbound(consumed, consume=True)

    assert "raw_msg" in kept and "raw_msg" not in consumed
    assert parsed == expected
    assert parsed.raw == kept["raw_msg"].encode()
