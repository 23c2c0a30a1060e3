"""`send-test` against a real Kave process on the development defaults, as a first run does."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.core.config import Settings
from app.tests.fixtures.api import MakeUser, bearer
from app.tests.server_process import ServerProcess, free_port
from app.tests.support import wait_until

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"


def send_test(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "SECRET_", "MAILCHIMP_", "STORAGE_", "ENVIRONMENT"))
        and key not in {"HOST", "PORT"}
    }
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "send-test", *args],
        capture_output=True,
        text=True,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        cwd=tmp_path,  # no stray .env file is read
        timeout=120,
        check=False,
    )


@pytest.fixture
def development_server(settings: Settings, tmp_path: Path) -> Iterator[ServerProcess]:
    """Kave as `make run PORT=...` starts it: development, no webhook key or URL set."""
    server = ServerProcess(
        database_url=settings.database_url,
        storage_path=tmp_path / "blobs",
        log=tmp_path / "server.log",
        ENVIRONMENT="development",
        MAILCHIMP_WEBHOOK_SECRET="",
        MAILCHIMP_WEBHOOK_URL="",
        SECRET_KEY=settings.secret_key.get_secret_value(),
        LOG_LEVEL="INFO",
    )
    server.env |= {"HOST": "127.0.0.1", "PORT": str(server.port)}
    try:
        yield server.start()
    finally:
        server.stop_quietly()


async def test_an_example_sent_on_the_defaults_is_accepted_and_listed(
    development_server: ServerProcess, tmp_path: Path, make_user: MakeUser, settings: Settings
) -> None:
    port = str(development_server.port)
    example = str(EXAMPLES / "with-pdf.eml")
    done = await asyncio.to_thread(send_test, tmp_path, example, PORT=port)
    assert done.returncode == 0, done.stderr
    url = f"http://127.0.0.1:{port}/api/v1/webhooks/mailchimp"
    assert f"POST {url}: 200 accepted=1 duplicates=0" in done.stdout

    headers = bearer(await make_user(scopes=["emails:read"]), settings)
    async with httpx.AsyncClient(base_url=development_server.url, headers=headers) as client:

        async def listed() -> bool:
            page = (await client.get("/api/v1/emails")).json()
            return any(item["subject"] == "Invoice 2026-0042" for item in page["items"])

        await wait_until(listed)
        item = (await client.get("/api/v1/emails")).json()["items"][0]
        assert item["attachment_count"] == 1
        assert item["envelope_recipient"] == "support@kave.example.com"

    again = await asyncio.to_thread(send_test, tmp_path, example, PORT=port)
    assert again.returncode == 0, again.stderr
    assert "accepted=0 duplicates=1" in again.stdout

    # --to makes it another recipient's copy: a new event.
    other = await asyncio.to_thread(
        send_test, tmp_path, example, "--to", "sales@kave.example.com", PORT=port
    )
    assert "accepted=1 duplicates=0" in other.stdout

    log = (tmp_path / "server.log").read_text()
    assert "mandrill.development_webhook_key" in log and "kave-development-webhook-key" in log


async def test_another_key_is_refused_with_a_hint(
    development_server: ServerProcess, tmp_path: Path
) -> None:
    done = await asyncio.to_thread(
        send_test,
        tmp_path,
        str(EXAMPLES / "plain.eml"),
        PORT=str(development_server.port),
        MAILCHIMP_WEBHOOK_SECRET="a-key-this-server-does-not-have",
    )
    assert done.returncode == 1
    assert ": 401 invalid_signature" in done.stderr
    assert "must share MAILCHIMP_WEBHOOK_SECRET and MAILCHIMP_WEBHOOK_URL" in done.stderr


def test_no_server_and_no_file_are_one_line_errors(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/api/v1/webhooks/mailchimp"
    done = send_test(tmp_path, str(EXAMPLES / "reply.eml"), "--url", url)
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: cannot reach Kave at {url}")
    assert "Traceback" not in done.stderr
    missing = send_test(tmp_path, "nowhere.eml")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: cannot read nowhere.eml: No such file or directory"


def _pdf_xref_is_exact(pdf: bytes) -> bool:
    """Every object the xref table lists starts at the offset it gives (what readers seek)."""
    start = int(pdf.rsplit(b"startxref", 1)[1].split()[0])
    lines = pdf[start:].split(b"trailer", 1)[0].split(b"\n")
    assert lines[0] == b"xref"
    count = int(lines[1].split()[1])
    offsets = [int(line.split()[0]) for line in lines[3 : 2 + count]]
    return all(pdf[offset:].startswith(b"%d 0 obj" % n) for n, offset in enumerate(offsets, 1))


def test_the_examples_are_what_their_names_say() -> None:
    from email import policy
    from email.parser import BytesParser

    from app.cli.send_test import inbound_event

    parse = BytesParser(policy=policy.default).parsebytes
    plain = parse((EXAMPLES / "plain.eml").read_bytes())
    assert not plain.is_multipart() and plain.get_content_type() == "text/plain"

    with_pdf = parse((EXAMPLES / "with-pdf.eml").read_bytes())
    [attachment] = list(with_pdf.iter_attachments())  # type: ignore[attr-defined]
    assert attachment.get_content_type() == "application/pdf"
    pdf = attachment.get_content()
    assert pdf.startswith(b"%PDF-1.") and pdf.rstrip().endswith(b"%%EOF")
    assert _pdf_xref_is_exact(pdf)

    reply = parse((EXAMPLES / "reply.eml").read_bytes())
    assert reply["In-Reply-To"] == with_pdf["Message-ID"]

    event = inbound_event((EXAMPLES / "with-pdf.eml").read_bytes())
    assert event["event"] == "inbound"
    assert event["msg"]["email"] == "support@kave.example.com"
    assert event["msg"]["from_email"] == "alice@example.org"
    assert event["msg"]["to"] == [["support@kave.example.com", "Support"]]
    assert "Please find the invoice attached." in event["msg"]["text"]
