"""`send-test FILE.eml`: post a message file to the running Kave as Mandrill would.

The file becomes one `inbound` event of a batch (the form field `mandrill_events`), signed with
the configured webhook key over the configured webhook URL, and is posted to that URL: the same
request Mailchimp makes, so a first run can see mail arrive without Mailchimp. In development
both are there without any setting (the development key, a URL from HOST and PORT).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import typer

from app.cli.runtime import load_cli_settings
from app.mandrill.form import EVENTS_FIELD
from app.mandrill.signature import mandrill_signature

DEFAULT_RECIPIENT = "inbox@example.com"
TIMEOUT_SECONDS = 30.0


def _text_part(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or not isinstance(part, EmailMessage):
        return None
    try:
        content = part.get_content()
    except (LookupError, UnicodeError):  # an unknown or lying charset: Kave parses raw_msg
        return None
    return content if isinstance(content, str) else None


def inbound_event(raw: bytes, recipient: str | None = None) -> dict[str, Any]:
    """The `inbound` event Mandrill posts for `raw` received at `recipient`."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)  # what policy.default parses to
    to = [(address, name or None) for name, address in getaddresses(message.get_all("To", []))]
    from_name, from_email = parseaddr(str(message.get("From", "")))
    msg: dict[str, Any] = {
        # Mandrill sends the message as JSON text; bytes that are not UTF-8 cannot be in it.
        "raw_msg": raw.decode("utf-8", "replace"),
        "headers": {name: str(value) for name, value in message.items()},
        "text": _text_part(message, "plain"),
        "html": _text_part(message, "html"),
        "from_email": from_email or None,
        "from_name": from_name or None,
        "to": [[address, name] for address, name in to if address],
        "email": recipient or next((a for a, _ in to if a), DEFAULT_RECIPIENT),
        "subject": str(message.get("Subject", "")),
        "tags": [],
        "sender": None,
        "spam_report": {"score": 0.0, "matched_rules": []},
        "dkim": {"signed": False, "valid": False},
        "spf": {"result": "none", "detail": "sent by kave send-test"},
    }
    return {"event": "inbound", "ts": int(time.time()), "msg": msg}


def signed_batch(events: list[dict[str, Any]], *, key: bytes, url: str) -> tuple[bytes, str]:
    """The url-encoded form body and its X-Mandrill-Signature."""
    params = [(EVENTS_FIELD, json.dumps(events, ensure_ascii=False))]
    return urlencode(params).encode("ascii"), mandrill_signature(key, url, params)


def _post(url: str, body: bytes, signature: str) -> tuple[int, bytes]:
    request = urllib.request.Request(  # noqa: S310 (the URL is the operator's own Kave)
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Mandrill-Signature": signature,
            "User-Agent": "Kave-send-test/1.0",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310
            return int(answer.status), bytes(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _envelope_message(content: bytes) -> str:
    try:
        error = json.loads(content)["error"]
        return f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return content[:200].decode("utf-8", "replace")


def send_test(
    file: Annotated[
        Path,
        typer.Argument(help="A message file (.eml), e.g. examples/plain.eml.", show_default=False),
    ],
    to: Annotated[
        str | None,
        typer.Option("--to", help="The receiving address (default: the message's first To)."),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url", help="Where to post and what to sign (default: MAILCHIMP_WEBHOOK_URL)."
        ),
    ] = None,
) -> None:
    """Sign FILE as a Mandrill inbound batch and post it to the running Kave."""
    settings = load_cli_settings()
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise _fail(f"cannot read {file}: {exc.strerror}") from None
    if not settings.webhook_keys:
        raise _fail("MAILCHIMP_WEBHOOK_SECRET is empty: there is no key to sign with")
    target = url or settings.mailchimp_webhook_url
    body, signature = signed_batch(
        [inbound_event(raw, to)], key=settings.webhook_keys[0], url=target
    )
    try:
        status, content = _post(target, body, signature)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _fail(
            f"cannot reach Kave at {target} ({reason}); is it running (`make run`)?"
        ) from None
    if status != 200:
        typer.echo(f"POST {target}: {status} {_envelope_message(content)}", err=True)
        if status == 401:
            typer.echo(
                "The signature was refused: this command and the server must share "
                "MAILCHIMP_WEBHOOK_SECRET and MAILCHIMP_WEBHOOK_URL (or HOST and PORT).",
                err=True,
            )
        raise typer.Exit(1)
    ack = json.loads(content)
    typer.echo(f"POST {target}: 200 accepted={ack['accepted']} duplicates={ack['duplicates']}")
    if ack["accepted"]:
        typer.echo("Kave stored the event; the email is listed at GET /api/v1/emails once parsed.")
    else:
        typer.echo("Kave already had this message for this recipient: a duplicate, nothing new.")
