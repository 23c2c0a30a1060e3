"""Recomputing an email takes the thread lock before it writes any of the email's rows, the
order a worker storing a replay of that email takes them in (lock, then delete the old row).
New attachment rows written first would hold a key-share lock on the email while waiting for
the thread lock, which that worker would hold while waiting to delete the email: a deadlock."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.emails.agent_fields import attachment_rows
from app.emails.models import Attachment
from app.emails.recompute import recompute_email
from app.emails.threads import ThreadRepository
from app.mail.parser import parse_inbound
from app.storage.base import content_key
from app.tests.emails.factories import add_email
from app.tests.mail import agent_messages as m
from app.tests.mail.builders import inbound

LOCKS = ("pg_advisory_xact_lock", "UPDATE threads SET id = id WHERE 0")


async def test_recompute_locks_the_threads_before_writing_the_emails_rows(
    app: FastAPI, session: AsyncSession
) -> None:
    store = app.state.services.blob_store
    raw = m.forwarded_with_pdf().as_bytes()
    top = parse_inbound(inbound(raw)).attachments[0]
    # Stored before the nested files had rows: recomputing adds three.
    email = await add_email(
        session, store, raw=raw, attachments=[(top.filename, top.content_type, top.content)]
    )
    await session.commit()

    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    factory = app.state.services.session_factory
    async with factory() as recomputing:
        sync_engine = recomputing.get_bind()
        event.listen(sync_engine, "before_cursor_execute", seen)
        try:
            assert await recompute_email(recomputing, store, email.id)
            await recomputing.commit()
        finally:
            event.remove(sync_engine, "before_cursor_execute", seen)

    writes = [
        i
        for i, sql in enumerate(statements)
        if sql.lstrip()
        .upper()
        .startswith(("INSERT INTO ATTACHMENTS", "UPDATE ATTACHMENTS", "UPDATE EMAILS"))
    ]
    [lock] = [i for i, sql in enumerate(statements) if any(mark in sql for mark in LOCKS)]
    assert writes, "recomputing wrote nothing"
    assert lock < min(writes), statements[: min(writes) + 1]
    rows = (await session.scalars(select(Attachment).where(Attachment.email_id == email.id))).all()
    assert len(rows) == 4  # and what it wrote is there


async def test_recompute_reads_the_rows_again_under_the_lock(
    app: FastAPI, session: AsyncSession, is_postgres: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not is_postgres:
        pytest.skip("a second writer at once needs PostgreSQL")
    store = app.state.services.blob_store
    raw = m.forwarded_with_pdf().as_bytes()
    parsed = parse_inbound(inbound(raw)).attachments
    email = await add_email(
        session,
        store,
        raw=raw,
        attachments=[(parsed[0].filename, parsed[0].content_type, parsed[0].content)],
    )
    await session.commit()
    factory = app.state.services.session_factory
    assign = ThreadRepository.assign

    async def replayed_meanwhile(self: ThreadRepository, **kwargs: Any) -> Any:
        # A worker stored the email again while the blobs were uploading: its nested files
        # have rows now, at the positions recompute would have given them.
        replayed = attachment_rows(parsed, [content_key(att.content) for att in parsed])
        async with factory() as worker:
            for row in replayed[1:]:
                row.email_id = email.id
                worker.add(row)
            await worker.commit()
        return await assign(self, **kwargs)

    monkeypatch.setattr(ThreadRepository, "assign", replayed_meanwhile)
    async with factory() as recomputing:
        assert await recompute_email(recomputing, store, email.id)
        await recomputing.commit()  # nothing added twice: no unique violation
    rows = (
        await session.scalars(
            select(Attachment).where(Attachment.email_id == email.id).order_by(Attachment.position)
        )
    ).all()
    assert [r.filename for r in rows] == [a.filename for a in parsed]
    assert rows[2].parent_id == rows[1].id  # the links recomputed on the rows it found
