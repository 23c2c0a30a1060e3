"""Reply text, category, sender trust and files inside forwarded mail, through the webhook and
back through the API (SQLite and PostgreSQL)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from app.tests.emails.agent_support import EMAILS, by_message_id, deliver
from app.tests.fixtures.api import TokenFor
from app.tests.mail import agent_messages as m
from app.tests.mail.reply_cases import REPLY_CASES


@pytest.fixture
async def reader(token_for: TokenFor) -> dict[str, str]:
    return await token_for("emails:read")


async def test_reply_text_in_each_style(
    client: httpx.AsyncClient, app: FastAPI, reader: dict[str, str]
) -> None:
    messages = [
        m.message(message_id=f"reply-{case.name}@example.org", text=case.text)
        for case in REPLY_CASES
    ]
    await deliver(client, app, list(messages))
    for case in REPLY_CASES:
        detail = await by_message_id(client, reader, f"reply-{case.name}@example.org")
        reply = detail["reply_text"]
        assert reply, case.name
        for phrase in case.new:
            assert phrase in reply, (case.name, phrase)
        for phrase in case.old:
            assert phrase not in reply, (case.name, phrase)
            assert phrase in detail["text_body"]  # the body itself is untouched


async def test_categories_and_the_category_filter(
    client: httpx.AsyncClient, app: FastAPI, reader: dict[str, str]
) -> None:
    messages = {
        "normal": m.message(message_id="cat-normal@example.org"),
        "auto_reply": m.auto_reply(),
        "bounce": m.bounce_report("lost@example.net"),
        "bulk": m.bulk(),
    }
    await deliver(client, app, list(messages.values()))
    listed = (await client.get(EMAILS, headers=reader)).json()["items"]
    assert sorted(item["category"] for item in listed) == sorted(messages)
    for category in messages:
        page = (await client.get(EMAILS, params={"category": category}, headers=reader)).json()
        assert [item["category"] for item in page["items"]] == [category]
    [bounce] = (await client.get(EMAILS, params={"category": "bounce"}, headers=reader)).json()[
        "items"
    ]
    detail = (await client.get(f"{EMAILS}/{bounce['id']}", headers=reader)).json()
    assert detail["bounce"]["recipient"] == "lost@example.net"
    assert (detail["bounce"]["status"], detail["bounce"]["action"]) == ("5.1.1", "failed")
    normal = await by_message_id(client, reader, "cat-normal@example.org")
    assert (normal["category"], normal["bounce"]) == ("normal", None)
    wrong = await client.get(EMAILS, params={"category": "spam"}, headers=reader)
    assert wrong.status_code == 422
    assert wrong.json()["error"]["code"] == "validation_error"


async def test_spoofed_from_is_false_beside_an_aligned_signature(
    client: httpx.AsyncClient, app: FastAPI, reader: dict[str, str]
) -> None:
    spoofed = m.signed("CEO <ceo@bank.example>", "evil.example", message_id="spoof@evil.example")
    genuine = m.signed("CEO <ceo@bank.example>", "bank.example", message_id="real@bank.example")
    # Mandrill verified both signatures: each is valid, for its own d= domain.
    await deliver(client, app, [spoofed, genuine], dkim={"signed": True, "valid": True})
    bad = await by_message_id(client, reader, "spoof@evil.example")
    good = await by_message_id(client, reader, "real@bank.example")
    assert bad["sender_authenticated"] is False
    assert "evil.example" in bad["sender_auth_reason"]
    assert good["sender_authenticated"] is True
    assert "bank.example" in good["sender_auth_reason"]
    items = (await client.get(EMAILS, headers=reader)).json()["items"]
    assert sorted(i["sender_authenticated"] for i in items) == [False, True]


async def test_no_evidence_is_null_and_dmarc_is_kept(
    client: httpx.AsyncClient, app: FastAPI, reader: dict[str, str]
) -> None:
    header = "mx.example.net; dmarc=fail (p=reject) header.from=example.org"
    await deliver(
        client,
        app,
        [
            m.message(message_id="plain@example.org"),
            m.message(message_id="ar@example.org", headers={"Authentication-Results": header}),
        ],
    )
    plain = await by_message_id(client, reader, "plain@example.org")
    assert (plain["sender_authenticated"], plain["dmarc"]) == (None, None)
    with_ar = await by_message_id(client, reader, "ar@example.org")
    assert (with_ar["sender_authenticated"], with_ar["dmarc"]) == (False, "fail")
    assert with_ar["authentication_results"][0]["authserv_id"] == "mx.example.net"


async def test_forwarded_pdf_comes_back_byte_for_byte(
    client: httpx.AsyncClient, app: FastAPI, reader: dict[str, str]
) -> None:
    message = m.forwarded_with_pdf()
    message_id = message["Message-ID"].strip("<>")
    await deliver(client, app, [message])
    detail = await by_message_id(client, reader, message_id)
    files = {a["filename"]: a for a in detail["attachments"]}
    assert list(files) == [
        "Fwd: Signed contract.eml",
        "Signed contract.eml",
        "contract.pdf",
        "totals.csv",
    ]
    outer, inner, pdf = (files[n] for n in list(files)[:3])
    assert (outer["parent_id"], inner["parent_id"], pdf["parent_id"]) == (
        None,
        outer["id"],
        inner["id"],
    )
    assert (pdf["source_subject"], pdf["source_from"]) == (
        "Signed contract",
        "orig@partner.example",
    )
    assert files["totals.csv"]["parent_id"] == outer["id"]
    assert detail["text_body"] == "FYI, forwarded twice.\n"
    download = await client.get(pdf["content_url"], headers=reader)
    assert download.status_code == 200
    assert download.content == m.PDF
    assert download.headers["content-type"] == "application/pdf"
    eml = await client.get(inner["content_url"], headers=reader)
    assert b"Subject: Signed contract" in eml.content


async def test_winmail_dat_is_kept_and_its_files_downloadable(
    client: httpx.AsyncClient, app: FastAPI, reader: dict[str, str]
) -> None:
    files = [("report.pdf", m.PDF), ("notes.txt", b"three\nlines\nhere")]
    message = m.with_winmail(files)
    await deliver(client, app, [message])
    detail = await by_message_id(client, reader, message["Message-ID"].strip("<>"))
    winmail, report, notes = detail["attachments"]
    assert (winmail["filename"], winmail["content_type"]) == ("winmail.dat", "application/ms-tnef")
    assert report["parent_id"] == notes["parent_id"] == winmail["id"]
    for attachment, data in ((report, m.PDF), (notes, b"three\nlines\nhere")):
        got = await client.get(attachment["content_url"], headers=reader)
        assert got.content == data
