"""`recompute-fields`: reply text, thread, category and sender trust for stored mail."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from app.cli.runtime import run_with_session
from app.core.config import Settings
from app.emails.recompute import email_ids, recompute_email
from app.mail.errors import UnparseableMessage
from app.storage.factory import build_blob_store


def recompute_fields(
    only_missing: Annotated[
        bool,
        typer.Option(
            "--only-missing/--all",
            help="Only emails stored before Kave computed these fields (no category yet).",
        ),
    ] = True,
) -> None:
    """Compute the agent fields again from each email's kept raw message, oldest first.

    Each email is committed on its own, so the command can be stopped and run again; a
    running Kave may keep processing meanwhile."""

    async def work(session: AsyncSession, settings: Settings) -> tuple[int, int, int]:
        store = await build_blob_store(settings)
        done = failed = changed = 0
        try:
            ids = await email_ids(session, only_missing=only_missing)
            with typer.progressbar(ids, label="Recomputing", show_pos=True) as bar:
                for email_id in bar:
                    try:
                        if await recompute_email(session, store, email_id):
                            done += 1
                        await session.commit()
                    except UnparseableMessage:
                        await session.rollback()
                        failed += 1
                    except (IntegrityError, StaleDataError):
                        # Deleted (or its rows replaced) by someone else meanwhile.
                        await session.rollback()
                        changed += 1
        finally:
            await store.close()
        return done, failed, changed

    done, failed, changed = run_with_session(work)
    typer.echo(f"Recomputed {done} email(s).")
    if failed:
        typer.echo(f"{failed} could not be parsed and were left as they were.", err=True)
    if changed:
        typer.echo(
            f"{changed} changed while being recomputed (deleted or stored again meanwhile); "
            "run the command again for them.",
            err=True,
        )
