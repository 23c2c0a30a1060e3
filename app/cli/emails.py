"""`kave emails list|show|purge`: stored emails from a shell, through the emails domain."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cli.output import (
    TIME_HELP,
    JsonOption,
    LimitOption,
    clip,
    parse_id,
    parse_time,
    print_json,
    print_table,
    when,
)
from app.cli.runtime import run_with_session, run_with_store
from app.core.config import Settings
from app.emails.errors import EmailNotFound
from app.emails.repository import AttachmentRepository, EmailFilters, EmailRepository
from app.emails.retention import Purged, purge_emails
from app.emails.schemas import EmailDetail, EmailListItem
from app.emails.threads import ThreadRepository
from app.storage.base import BlobStore

emails_app = typer.Typer(help="List, show and purge stored emails.", no_args_is_help=True)


@emails_app.command("list")
def list_(
    from_: Annotated[str | None, typer.Option("--from", help="Part of the sender address.")] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Part of a To/Cc address or the envelope recipient.")
    ] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="Part of the subject.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help=f"Received at or after: {TIME_HELP}.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help=f"Received before: {TIME_HELP}.")
    ] = None,
    limit: LimitOption = 20,
    as_json: JsonOption = False,
) -> None:
    """Emails, newest first: id, received time, sender, attachments and subject."""
    filters = EmailFilters(
        from_contains=from_,
        to_contains=to,
        subject_contains=subject,
        received_after=parse_time(since),
        received_before=parse_time(until),
    )

    async def work(session: AsyncSession, _: Settings) -> list[EmailListItem]:
        rows = await EmailRepository(session).page(filters, after=None, limit=limit)
        return [EmailListItem.of(*row) for row in rows]

    items = run_with_session(work)
    if as_json:
        print_json(items)
        return
    if not items:
        typer.echo("No emails match.")
        return
    print_table(
        ["id", "received (UTC)", "from", "att", "subject"],
        [
            [
                str(item.id),
                when(item.received_at),
                clip(item.from_.email if item.from_ else None, 40) or "-",
                str(item.attachment_count),
                clip(item.subject, 60),
            ]
            for item in items
        ],
    )


@emails_app.command("show")
def show(
    email_id: Annotated[str, typer.Argument(metavar="ID", help="The email's id.")],
    body: Annotated[bool, typer.Option("--body", help="Also print the text body.")] = False,
    as_json: JsonOption = False,
) -> None:
    """One email: addresses, times, authentication results, attachments."""
    id_ = parse_id(email_id)

    async def work(session: AsyncSession, _: Settings) -> EmailDetail:
        email = await EmailRepository(session).get(id_)
        if email is None:
            raise EmailNotFound(f"No email with id {id_}.")
        attachments = await AttachmentRepository(session).list_for_email(id_)
        thread_id = await ThreadRepository(session).thread_of(email.thread_key)
        return EmailDetail.of(email, list(attachments), thread_id)

    detail = run_with_session(work)
    if as_json:
        print_json(detail)
        return
    sender = detail.from_
    fields = {
        "id": str(detail.id),
        "message-id": detail.message_id or "-",
        "subject": detail.subject or "",
        "from": f"{sender.name} <{sender.email}>"
        if sender and sender.name
        else (sender.email if sender else "-"),
        "to": ", ".join(a.email for a in detail.to) or "-",
        "cc": ", ".join(a.email for a in detail.cc) or "-",
        "received on": detail.envelope_recipient or "-",
        "sent (UTC)": when(detail.sent_at),
        "received (UTC)": when(detail.received_at),
        "spam score": "-" if detail.spam.score is None else f"{detail.spam.score:g}",
        "spf": detail.spf.result or "-",
        "dkim": {True: "valid", False: "invalid", None: "-"}[detail.dkim.valid],
        "raw message": f"{detail.raw_size} bytes" if detail.raw_available else "not kept",
        "event": str(detail.event_id) if detail.event_id else "-",
    }
    width = max(map(len, fields))
    for name, value in fields.items():
        typer.echo(f"{name:{width}}  {value}")
    typer.echo(f"attachments ({len(detail.attachments)}):")
    for a in detail.attachments:
        inline = ", inline" if a.inline else ""
        typer.echo(f"  {a.id}  {a.filename}  {a.content_type}, {a.size} bytes{inline}")
    if body:
        typer.echo("")
        typer.echo(detail.text_body or "(no text body)")


@emails_app.command("purge")
def purge(
    older_than: Annotated[
        float,
        typer.Option(
            "--older-than", metavar="DAYS", min=0, help="Delete emails received more than DAYS ago."
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; change nothing.")
    ] = False,
) -> None:
    """Delete old emails, their attachments, raw messages and the blobs no younger email shares
    (what EMAIL_RETENTION_DAYS does hourly in the worker)."""

    async def work(session: AsyncSession, store: BlobStore, _: Settings) -> Purged:
        factory = async_sessionmaker(session.bind, expire_on_commit=False, autoflush=False)
        return await purge_emails(factory, store, older_than_days=older_than, dry_run=dry_run)

    result = run_with_store(work)
    cutoff = when(result.cutoff)
    if result.dry_run:
        typer.echo(
            f"Would delete {result.emails} email(s) received before {cutoff} UTC "
            f"and {result.blobs} blob(s) no younger email shares. Nothing was changed."
        )
    else:
        typer.echo(
            f"Deleted {result.emails} email(s) received before {cutoff} UTC "
            f"and {result.blobs} blob(s)."
        )
