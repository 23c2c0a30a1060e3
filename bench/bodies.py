"""Signed inbound batches for the load generators: one template, many distinct bodies.

Every body is the same single-event inbound batch (~31 KB form body, one 20 KB attachment) with
a 16-hex-digit token written into six places: the Message-ID and Subject (in raw_msg, in the
`headers` field and in `subject`) and the first 16 base64 characters of the attachment, so the
Message-ID, raw_msg and attachment bytes of every body differ. Hex digits are valid in base64,
JSON and a form body without escaping, so a body is `seg[0] + tok + seg[1] + ... + seg[6]` and
all bodies have the same length. The load generator keeps the seven shared segments once and
only (token, signature) per body: ~60 bytes per body instead of 31 KB.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import orjson

from app.mandrill.signature import mandrill_signature
from app.tests.support import WEBHOOK_KEY, WEBHOOK_PATH, WEBHOOK_URL, build_message, inbound_event

FIELD = "mandrill_events"
MARKER = "QQQQTOKENQQQQQQQ"  # 16 characters, replaced by the token
TOKEN_WIDTH = len(MARKER)
FIXED_TS = 1_763_640_000
CONTENT_TYPE = "application/x-www-form-urlencoded"
USER_AGENT = "Mandrill-Webhook/1.0"


def _inbound_value(token: str, attachment: bytes) -> str:
    """The `mandrill_events` value (JSON text) of one inbound email carrying `token`."""
    message = build_message(
        subject=f"Bench {token}",
        message_id=f"<bench-{token}@example.org>",
        attachments=[("report.bin", "application/octet-stream", attachment)],
    )
    event = inbound_event(message)
    event["ts"] = FIXED_TS
    raw: str = event["msg"]["raw_msg"]
    # The attachment's base64 body starts at a line start: 16 base64 characters there are
    # exactly 12 bytes of attachment, so writing the token there changes the attachment.
    at = raw.index("\n\n", raw.index('filename="report.bin"')) + 2
    event["msg"]["raw_msg"] = raw[:at] + token + raw[at + TOKEN_WIDTH :]
    return orjson.dumps([event]).decode()


@dataclass(frozen=True)
class Template:
    value_segments: tuple[str, ...]  # the decoded form value (what is signed), split at tokens
    body_segments: tuple[str, ...]  # the urlencoded body (what is sent), split at tokens
    key: bytes = WEBHOOK_KEY.encode()
    url: str = WEBHOOK_URL
    path: str = WEBHOOK_PATH

    @classmethod
    def inbound(cls, attachment_bytes: int = 20_000) -> Template:
        value = _inbound_value(MARKER, os.urandom(attachment_bytes))
        body = urlencode([(FIELD, value)])
        value_segments = tuple(value.split(MARKER))
        body_segments = tuple(body.split(MARKER))
        if len(value_segments) != 7 or len(body_segments) != 7:
            raise RuntimeError("the token marker was not found exactly six times")
        template = cls(value_segments, body_segments)
        token = "0123456789abcdef"
        expected = mandrill_signature(template.key, template.url, [(FIELD, template.value(token))])
        if template.signatures([token]) != [expected]:
            raise RuntimeError("bench signatures disagree with app.mandrill.signature")
        return template

    @property
    def body_size(self) -> int:
        return sum(map(len, self.body_segments)) + TOKEN_WIDTH * (len(self.body_segments) - 1)

    def value(self, token: str) -> str:
        return token.join(self.value_segments)

    def body(self, token: str) -> bytes:
        return token.join(self.body_segments).encode("ascii")

    def signatures(self, tokens: Iterable[str]) -> list[str]:
        """X-Mandrill-Signature per token: HMAC-SHA1(key, url + field + value), base64."""
        base = hmac.new(self.key, (self.url + FIELD).encode(), hashlib.sha1)
        base.update(self.value_segments[0].encode())
        rest = [segment.encode() for segment in self.value_segments[1:]]
        out = []
        for token in tokens:
            h = base.copy()
            tok = token.encode()
            for segment in rest:
                h.update(tok)
                h.update(segment)
            out.append(base64.b64encode(h.digest()).decode("ascii"))
        return out

    def headers(self, signature: str) -> dict[str, str]:
        return {
            "Content-Type": CONTENT_TYPE,
            "X-Mandrill-Signature": signature,
            "User-Agent": USER_AGENT,
        }

    def write_segments(self, path: Path) -> None:
        # A form body has no raw newline (it would be %0A): one segment per line.
        path.write_text("\n".join(self.body_segments) + "\n", encoding="ascii")


class Tokens:
    """Hands out tokens that never repeat within one bench invocation."""

    def __init__(self) -> None:
        self._next = int.from_bytes(os.urandom(3), "big") << 32

    def take(self, n: int) -> list[str]:
        start = self._next
        self._next += n
        return [f"{i:0{TOKEN_WIDTH}x}" for i in range(start, start + n)]


def write_tokens(path: Path, template: Template, tokens: list[str]) -> None:
    """One `token signature` line per body, for the wrk script."""
    lines = (f"{tok} {sig}\n" for tok, sig in zip(tokens, template.signatures(tokens), strict=True))
    path.write_text("".join(lines), encoding="ascii")


def large_body(attachment_bytes: int, token: str) -> tuple[bytes, dict[str, str]]:
    """One signed inbound email with a single large attachment."""
    params = [(FIELD, _inbound_value(token, os.urandom(attachment_bytes)))]
    signature = mandrill_signature(WEBHOOK_KEY.encode(), WEBHOOK_URL, params)
    headers = {"Content-Type": CONTENT_TYPE, "X-Mandrill-Signature": signature}
    return urlencode(params).encode("ascii"), headers | {"User-Agent": USER_AGENT}
