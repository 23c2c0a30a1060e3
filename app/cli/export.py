"""`kave export`: the kept raw messages as `.eml` files or one mbox, oldest first.

Only emails whose raw message is stored can be exported (an email built from Mandrill's parsed
fields has none); they are counted and named at the end. Files are written as the messages
were received, byte for byte; the mbox is Python's `mailbox.mbox` format (`From ` lines, and
`>From` quoting in bodies), which mail clients and `mailbox` read back.
"""

from __future__ import annotations

import mailbox
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.cli.output import TIME_HELP, parse_time, progress, when
from app.cli.runtime import run_with_store
from app.core.config import Settings
from app.emails.repository import EmailRepository, RawMessageRef
from app.storage.base import BlobNotFound, BlobStore

BATCH_SIZE = 200


@dataclass
class Exported:
    written: int = 0
    without_raw: int = 0
    missing_blobs: list[str] = field(default_factory=list)


def _eml_name(ref: RawMessageRef) -> str:
    return f"{ref.received_at:%Y%m%dT%H%M%SZ}-{ref.id}.eml"


class _Writer:
    def __init__(self, *, mbox: Path | None, directory: Path | None) -> None:
        self.directory = directory
        self.box = mailbox.mbox(mbox, create=True) if mbox else None
        if self.box is not None:
            self.box.lock()

    def write(self, ref: RawMessageRef, raw: bytes) -> None:
        if self.box is None:
            assert self.directory is not None
            (self.directory / _eml_name(ref)).write_bytes(raw)
            return
        message = mailbox.mboxMessage(raw)
        # The `From ` line: the sender and when Kave received the message.
        message.set_from(ref.from_address or "MAILER-DAEMON", ref.received_at.timetuple())
        self.box.add(message)

    def close(self) -> None:
        if self.box is not None:
            self.box.flush()
            self.box.unlock()
            self.box.close()


def export(
    since: Annotated[
        str, typer.Option("--since", help=f"Emails received at or after: {TIME_HELP}.")
    ],
    until: Annotated[
        str | None, typer.Option("--until", help=f"Emails received before: {TIME_HELP}.")
    ] = None,
    mbox: Annotated[
        Path | None,
        typer.Option("--mbox", metavar="FILE", dir_okay=False, help="Append to this mbox file."),
    ] = None,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", metavar="DIR", file_okay=False, help="Write one .eml file per email here."
        ),
    ] = None,
) -> None:
    """Write the kept raw messages received in [--since, --until) as .eml files or an mbox."""
    if (mbox is None) == (directory is None):
        raise typer.BadParameter("give exactly one of --mbox FILE or --dir DIR")
    start = parse_time(since)
    end = parse_time(until)
    assert start is not None
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)

    async def work(session: AsyncSession, store: BlobStore, _: Settings) -> Exported:
        emails = EmailRepository(session)
        report = Exported()
        total = await emails.count_with_raw(since=start, until=end)
        report.without_raw = await emails.count_all_between(since=start, until=end) - total
        writer = _Writer(mbox=mbox, directory=directory)
        after: tuple[datetime, uuid.UUID] | None = None
        try:
            with progress(total, "Exporting") as bar:
                while True:
                    refs = await emails.raw_messages(
                        since=start, until=end, after=after, limit=BATCH_SIZE
                    )
                    if not refs:
                        break
                    for ref in refs:
                        try:
                            raw = await store.get(ref.blob_key)
                        except BlobNotFound:
                            report.missing_blobs.append(str(ref.id))
                        else:
                            writer.write(ref, raw)
                            report.written += 1
                        bar.update(1)
                    after = (refs[-1].received_at, refs[-1].id)
        finally:
            writer.close()
        return report

    report = run_with_store(work)
    target = f"mbox {mbox}" if mbox else f"directory {directory}"
    span = f"from {when(start)}" + (f" to {when(end)}" if end else "")
    typer.echo(f"Exported {report.written} message(s) received {span} UTC to {target}.")
    if report.without_raw:
        typer.echo(f"Skipped {report.without_raw} email(s) with no raw message kept.")
    for email_id in report.missing_blobs:
        typer.echo(f"warning: email {email_id}: its raw message is missing from storage", err=True)
