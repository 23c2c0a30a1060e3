"""Category, sender trust and the files inside forwarded mail and winmail.dat, at the parser."""

from __future__ import annotations

from app.mail.agent_fields import agent_fields
from app.mail.category import Category, classify
from app.mail.parser import parse_inbound
from app.mail.sender_auth import aligned, authenticate_sender
from app.tests.mail import agent_messages as m
from app.tests.mail.builders import inbound


def test_categories() -> None:
    assert classify(parse_inbound(inbound(m.message()))).category == Category.NORMAL
    assert classify(parse_inbound(inbound(m.auto_reply()))).category == Category.AUTO_REPLY
    assert classify(parse_inbound(inbound(m.bulk()))).category == Category.BULK
    assert classify(parse_inbound(inbound(m.precedence_bulk()))).category == Category.BULK
    for headers in (
        {"Auto-Submitted": "auto-generated"},
        {"X-Autorespond": "1"},
        {"Precedence": "auto_reply"},
    ):
        found = classify(parse_inbound(inbound(m.message(headers=headers))))
        assert found.category == Category.AUTO_REPLY, headers
    # "no" is the explicit opposite of an automatic message.
    explicit = m.message(headers={"Auto-Submitted": "no"})
    assert classify(parse_inbound(inbound(explicit))).category == Category.NORMAL


def test_bounce_report_gives_recipient_status_and_action() -> None:
    found = classify(parse_inbound(inbound(m.bounce_report("lost@example.net"))))
    assert found.category == Category.BOUNCE
    assert (found.bounce_recipient, found.bounce_status, found.bounce_action) == (
        "lost@example.net",
        "5.1.1",
        "failed",
    )
    assert (
        found.bounce_diagnostic is not None
        and "Recipient address rejected" in found.bounce_diagnostic
    )


def test_mailer_daemon_bounce_without_a_report() -> None:
    found = classify(parse_inbound(inbound(m.daemon_bounce())))
    assert (found.category, found.bounce_recipient, found.bounce_status) == (
        Category.BOUNCE,
        "gone@example.com",
        "5.2.1",
    )


def test_a_person_at_postmaster_is_not_a_bounce() -> None:
    hello = m.message(sender="postmaster@example.org", subject="Lunch?")
    assert classify(parse_inbound(inbound(hello))).category == Category.NORMAL


def _trust(message: object, **fields: object) -> tuple[bool | None, str]:
    found = authenticate_sender(parse_inbound(inbound(message, **fields)))  # type: ignore[arg-type]
    return found.authenticated, found.reason


def test_sender_trust() -> None:
    valid = {"dkim": {"signed": True, "valid": True}}
    spoofed = m.signed("CEO <ceo@bank.example>", "evil.example")
    assert _trust(spoofed, **valid) == (
        False,
        "dkim: valid signature only by evil.example, not bank.example",
    )
    parent = m.signed("CEO <ceo@mail.bank.example>", "bank.example")
    verdict, reason = _trust(parent, **valid)
    assert verdict is True and "bank.example" in reason
    # A look-alike domain is not a parent.
    lookalike = m.signed("CEO <ceo@notbank.example>", "bank.example")
    assert _trust(lookalike, **valid)[0] is False
    # A signature that did not verify.
    assert _trust(parent, dkim={"signed": True, "valid": False})[0] is False
    # SPF: aligned pass, fail, and nothing at all.
    bounce_path = m.message(sender="a@shop.example", headers={"Return-Path": "<b@shop.example>"})
    assert _trust(bounce_path, spf={"result": "pass"})[0] is True
    assert _trust(m.message(), spf={"result": "fail"})[0] is False
    assert _trust(m.message()) == (None, "no authentication evidence for the From domain")


def test_authentication_results_dmarc_is_kept_and_only_a_fallback() -> None:
    header = (
        "mx.kave.example; dkim=pass header.d=example.org header.s=s1; "
        "spf=pass smtp.mailfrom=example.org; dmarc=pass (p=reject) header.from=example.org"
    )
    msg = m.message(headers={"Authentication-Results": header})
    found = authenticate_sender(parse_inbound(inbound(msg)))
    assert found.dmarc == "pass"
    assert found.authenticated is True and "dmarc" in found.reason
    assert found.results[0]["authserv_id"] == "mx.kave.example"
    assert found.results[0]["results"][0]["properties"]["header.d"] == "example.org"
    # Mandrill's evidence wins over a header anyone could have written.
    spoof = m.signed("ceo@example.org", "evil.example")
    spoof["Authentication-Results"] = header
    forged = authenticate_sender(
        parse_inbound(inbound(spoof, dkim={"signed": True, "valid": True}))
    )
    assert (forged.authenticated, forged.dmarc) == (False, "pass")
    # Unreadable headers are skipped.
    broken = m.message(headers={"Authentication-Results": ";;;==="})
    assert authenticate_sender(parse_inbound(inbound(broken))).results == []


def test_alignment() -> None:
    assert aligned("example.org", "example.org")
    assert aligned("example.org", "mail.example.org")
    assert not aligned("mail.example.org", "example.org")
    assert not aligned("org", "example.org")  # never a bare suffix
    assert not aligned("ample.org", "example.org")
    assert not aligned(None, "example.org")


def test_files_inside_forwarded_messages_are_found_with_their_origin() -> None:
    parsed = parse_inbound(inbound(m.forwarded_with_pdf()))
    names = [(a.filename, a.parent) for a in parsed.attachments]
    assert names == [
        ("Fwd: Signed contract.eml", None),
        ("Signed contract.eml", 0),
        ("contract.pdf", 1),
        ("totals.csv", 0),
    ]
    pdf = parsed.attachments[2]
    assert pdf.content == m.PDF
    assert (pdf.source_subject, pdf.source_from) == ("Signed contract", "orig@partner.example")
    assert parsed.attachments[3].source_from == "middle@example.org"
    assert parsed.text_body == "FYI, forwarded twice.\n"


def test_winmail_dat_is_kept_and_unpacked() -> None:
    files = [("report.pdf", m.PDF), ("notes.txt", b"three\nlines\nhere")]
    parsed = parse_inbound(inbound(m.with_winmail(files)))
    got = [(a.filename, a.content_type, a.parent, a.content) for a in parsed.attachments]
    assert got[0][:3] == ("winmail.dat", "application/ms-tnef", None)
    assert got[1:] == [
        ("report.pdf", "application/pdf", 0, m.PDF),
        ("notes.txt", "text/plain", 0, b"three\nlines\nhere"),
    ]


def test_a_broken_winmail_dat_stays_one_attachment() -> None:
    msg = m.message()
    msg.add_attachment(b"not tnef at all", maintype="application", subtype="ms-tnef",
                       filename="winmail.dat")  # fmt: skip
    parsed = parse_inbound(inbound(msg))
    assert [a.filename for a in parsed.attachments] == ["winmail.dat"]


def test_agent_fields_together() -> None:
    fields = agent_fields(parse_inbound(inbound(m.message(text="Yes.\n\n> Really?\n"))))
    assert fields.reply_text == "Yes."
    assert fields.classification.category == Category.NORMAL
    assert fields.sender.authenticated is None
