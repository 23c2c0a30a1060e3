"""Messages for the agent-field tests: categories, signatures, forwarded files, winmail.dat."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from app.tests.mail.tnef_builder import build_tnef

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <</Type /Catalog>> endobj\n" + bytes(range(256)) * 40


def message(
    *,
    subject: str = "Hello",
    sender: str = "Alice Example <alice@example.org>",
    text: str = "Plain body",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: list[str] | None = None,
    date: datetime | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = "inbox@kave.example.com"
    msg["Date"] = format_datetime(date or datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    msg["Message-ID"] = f"<{message_id}>" if message_id else make_msgid(domain="example.org")
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        msg["References"] = " ".join(f"<{r}>" for r in references)
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text)
    return msg


def dkim_signature(domain: str) -> str:
    return (
        f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s=sel1; h=from:to:subject; "
        "bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=dGVzdA=="
    )


def signed(sender: str, domain: str, **kwargs: object) -> EmailMessage:
    return message(sender=sender, headers={"DKIM-Signature": dkim_signature(domain)}, **kwargs)  # type: ignore[arg-type]


def auto_reply() -> EmailMessage:
    return message(
        subject="Out of office: Hello",
        text="I am away until Monday.",
        headers={"Auto-Submitted": "auto-replied", "X-Autoreply": "yes"},
    )


def bounce_report(recipient: str = "nobody@example.net") -> bytes:
    """A DSN as Postfix writes it (RFC 3464): multipart/report with a delivery-status part."""
    return (
        "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n"
        "To: inbox@kave.example.com\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {make_msgid(domain='mx.example.org')}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="dsn"\r\n'
        "\r\n--dsn\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        "\r\n--dsn\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        "Original-Recipient: rfc822;nobody@example.net\r\n"
        "Action: failed\r\n"
        "Status: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.net>: Recipient address\r\n"
        "    rejected\r\n"
        "\r\n--dsn--\r\n"
    ).encode()


def daemon_bounce() -> EmailMessage:
    return message(
        subject="Mail delivery failed: returning message to sender",
        sender="Mail Delivery System <Mailer-Daemon@mail.example.com>",
        text="A message that you sent could not be delivered.\n\n  gone@example.com\n"
        "    SMTP error from remote mail server: 550 5.2.1 mailbox disabled\n",
        headers={"X-Failed-Recipients": "gone@example.com"},
    )


def bulk() -> EmailMessage:
    return message(
        subject="Our November newsletter",
        sender="News <news@shop.example>",
        headers={
            "List-Unsubscribe": "<https://shop.example/unsubscribe?u=1>",
            "List-Id": "News <news.shop.example>",
        },
    )


def precedence_bulk() -> EmailMessage:
    return message(subject="Digest", headers={"Precedence": "bulk"})


def forwarded_with_pdf(pdf: bytes = PDF) -> EmailMessage:
    inner = EmailMessage()
    inner["From"] = "Original Sender <orig@partner.example>"
    inner["To"] = "fwd@example.org"
    inner["Subject"] = "Signed contract"
    inner["Message-ID"] = make_msgid(domain="partner.example")
    inner.set_content("Contract attached.")
    inner.add_attachment(pdf, maintype="application", subtype="pdf", filename="contract.pdf")
    # Forwarded twice: the files of the innermost message are found too.
    middle = EmailMessage()
    middle["From"] = "Middle Man <middle@example.org>"
    middle["Subject"] = "Fwd: Signed contract"
    middle.set_content("See below.")
    middle.add_attachment(inner)
    middle.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="totals.csv")
    outer = message(subject="Fwd: Fwd: Signed contract", text="FYI, forwarded twice.")
    outer.add_attachment(middle)
    return outer


def with_winmail(files: list[tuple[str, bytes]]) -> EmailMessage:
    msg = message(subject="From Outlook", text="Files attached (as Outlook sends them).")
    msg.add_attachment(
        build_tnef(files), maintype="application", subtype="ms-tnef", filename="winmail.dat"
    )
    return msg
