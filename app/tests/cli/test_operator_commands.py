"""`kave emails|events|stats|check|replay|export` in a subprocess against the test database."""

from __future__ import annotations

import asyncio
import email
import json
import mailbox
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.db.base import utcnow
from app.emails.models import Email
from app.processing.models import WebhookEvent
from app.storage.base import BlobStore
from app.tests.cli.test_cli import run_cli
from app.tests.emails.factories import add_email, add_event

RAW = b"From: alice@example.org\r\nSubject: Invoice\r\n\r\nFrom the start of a line.\r\n"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Nothing processes what `replay` requeues: its effect stays in the rows to be read.
    return {"processing_enabled": False}


@pytest.fixture
def kave(settings: Settings, tmp_path: Path) -> Any:
    async def run(*args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(run_cli, settings.database_url, tmp_path, *args)

    return run


@pytest.fixture
def store(app: Any) -> BlobStore:
    blob_store: BlobStore = app.state.services.blob_store
    return blob_store


async def statuses(session: AsyncSession) -> dict[str, str]:
    session.expunge_all()
    rows = (await session.execute(select(WebhookEvent.event_type, WebhookEvent.status))).all()
    await session.commit()
    return dict(rows)  # type: ignore[arg-type]


async def test_emails_list_and_show(kave: Any, session: AsyncSession, store: BlobStore) -> None:
    empty = await kave("emails", "list")
    assert empty.returncode == 0, empty.stderr
    assert "No emails match." in empty.stdout
    invoice = await add_email(
        session, store, subject="Invoice", raw=RAW, attachments=[("a.pdf", "application/pdf", b"%")]
    )
    await add_email(session, subject="Hello again", from_address="bob@example.org")

    listed = await kave("emails", "list", "--from", "alice")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["id", "received", "(UTC)", "from", "att", "subject"]
    assert len(lines) == 2 and str(invoice.id) in lines[1] and "Invoice" in lines[1]
    as_json = json.loads((await kave("emails", "list", "--json", "--limit", "5")).stdout)
    assert {item["subject"] for item in as_json} == {"Invoice", "Hello again"}

    shown = await kave("emails", "show", str(invoice.id), "--body")
    assert shown.returncode == 0, shown.stderr
    assert "a.pdf  application/pdf, 1 bytes" in shown.stdout
    assert f"{len(RAW)} bytes" in shown.stdout and shown.stdout.rstrip().endswith("text")
    detail = json.loads((await kave("emails", "show", str(invoice.id), "--json")).stdout)
    assert detail["attachments"][0]["filename"] == "a.pdf"

    missing = await kave("emails", "show", "0b9d7e38-5f0e-4bb6-9c1c-2f7d1c1e8a41")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: No email with id 0b9d7e38-5f0e-4bb6-9c1c-2f7d1c1e8a41."
    bad = await kave("emails", "show", "nope")
    assert bad.returncode == 2 and "is not an id" in bad.stderr


async def test_events_list_show_and_stats(kave: Any, session: AsyncSession) -> None:
    failed = await add_event(
        session,
        status="failed",
        kind="inbound",
        payload={"x": 1},
        last_error="broken MIME",
        attempts=8,
    )
    await add_event(session, status="processed", kind="message", event_type="open")

    listed = await kave("events", "list", "--status", "failed")
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 2
    assert str(failed.id) in listed.stdout and "broken MIME" in listed.stdout
    shown = await kave("events", "show", str(failed.id), "--payload")
    assert shown.returncode == 0, shown.stderr
    assert "attempts" in shown.stdout and '"x": 1' in shown.stdout

    stats = await kave("stats", "--json")
    assert stats.returncode == 0, stats.stderr
    counts = json.loads(stats.stdout)["events"]
    assert counts["by_status"]["failed"] == 1 and counts["by_kind"]["message"] == 1
    text = await kave("stats")
    assert "events       2" in text.stdout


async def test_check_reports_each_part_and_mailchimp_unreachable(kave: Any) -> None:
    done = await kave("check")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()}
    assert rows == {"settings": "ok", "database": "ok", "storage": "ok", "mailchimp": "warn"}
    assert "unreachable" in done.stdout  # no internet on the test machine


async def test_replay_filters_skips_invalid_and_dry_runs(kave: Any, session: AsyncSession) -> None:
    old = utcnow() - timedelta(days=3)
    await add_event(session, status="failed", event_type="old", payload={}, received_at=old)
    await add_event(session, status="failed", event_type="new", payload={})
    invalid = await add_event(session, status="failed", kind="invalid", event_type="bad", payload=1)
    await add_event(session, status="failed", event_type="purged", payload=None)

    dry = await kave("replay", "--since", "1d", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Would requeue 1 failed event(s). Nothing was changed." in dry.stdout
    assert "Skipped 1 whose payload was purged" in dry.stdout
    assert "Skipped 1 of kind invalid" in dry.stdout
    assert set((await statuses(session)).values()) == {"failed"}

    done = await kave("replay", "--since", "1d")
    assert done.returncode == 0, done.stderr
    assert "Requeued 1 failed event(s)." in done.stdout
    assert await statuses(session) == {
        "old": "failed",
        "new": "received",
        "bad": "failed",
        "purged": "failed",
    }

    by_id = await kave("replay", "--id", str(invalid.id))
    assert "Requeued 0 event(s)." in by_id.stdout and "kind invalid" in by_id.stdout
    forced = await kave("replay", "--id", str(invalid.id), "--include-invalid")
    assert "Requeued 1 event(s)." in forced.stdout
    assert (await statuses(session))["bad"] == "received"
    refused = await kave("replay", "--id", str(invalid.id))
    assert refused.returncode == 1
    assert "queued or being processed" in refused.stderr


async def test_emails_purge(kave: Any, session: AsyncSession, store: BlobStore) -> None:
    await add_email(session, store, raw=RAW, received_at=utcnow() - timedelta(days=40))
    await add_email(session, store, subject="young")
    dry = await kave("emails", "purge", "--older-than", "30", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Would delete 1 email(s)" in dry.stdout and "1 blob(s)" in dry.stdout
    done = await kave("emails", "purge", "--older-than", "30")
    assert "Deleted 1 email(s)" in done.stdout
    session.expunge_all()
    assert (await session.scalars(select(Email.subject))).all() == ["young"]
    await session.commit()


async def test_export_to_a_directory_and_an_mbox(
    kave: Any, session: AsyncSession, store: BlobStore, tmp_path: Path
) -> None:
    second = RAW.replace(b"Invoice", b"Second")
    first = await add_email(session, store, raw=RAW, received_at=utcnow() - timedelta(hours=2))
    await add_email(session, store, raw=second, received_at=utcnow() - timedelta(hours=1))
    await add_email(session, store, raw=None, subject="parsed only")
    await add_email(
        session, store, raw=b"Subject: ancient\r\n\r\n", received_at=utcnow() - timedelta(days=9)
    )

    out = tmp_path / "eml"
    done = await kave("export", "--since", "1d", "--dir", str(out))
    assert done.returncode == 0, done.stderr
    assert "Exported 2 message(s)" in done.stdout
    assert "Skipped 1 email(s) with no raw message kept." in done.stdout
    files = sorted(out.iterdir())
    assert [f.read_bytes() for f in files] == [RAW, second]
    assert files[0].name.endswith(f"-{first.id}.eml")
    assert email.message_from_bytes(files[0].read_bytes())["Subject"] == "Invoice"

    box = tmp_path / "mail.mbox"
    done = await kave("export", "--since", "1d", "--mbox", str(box))
    assert done.returncode == 0, done.stderr
    messages = list(mailbox.mbox(box))
    assert [m["Subject"] for m in messages] == ["Invoice", "Second"]
    assert messages[0].get_from().startswith("alice@example.org ")
    # mbox quotes a body line starting "From " (mboxo, as Python's mailbox writes and reads it).
    assert messages[0].get_payload() == ">From the start of a line.\n"

    both = await kave("export", "--since", "1d")
    assert both.returncode == 2 and "exactly one of --mbox FILE or --dir DIR" in both.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["list-users"],
        ["emails", "list"],
        ["stats"],
        ["replay"],
        ["events", "show", "0b9d7e38-5f0e-4bb6-9c1c-2f7d1c1e8a41"],
    ],
)
async def test_database_errors_are_one_line(tmp_path: Path, args: list[str]) -> None:
    unreachable = "postgresql+asyncpg://kave:sekret-pw@127.0.0.1:1/kave"
    done = await asyncio.to_thread(run_cli, unreachable, tmp_path, *args)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: cannot reach the database at postgresql+asyncpg://kave@127.0.0.1:1/kave "
        "(ConnectionRefusedError)"
    ]
    assert "sekret-pw" not in done.stdout + done.stderr

    empty = f"sqlite+aiosqlite:///{tmp_path / 'never-migrated.db'}"
    done = await asyncio.to_thread(run_cli, empty, tmp_path, *args)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: not migrated: run `make migrate` (or `alembic upgrade head`)"
    ]
