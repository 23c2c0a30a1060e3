"""Stored emails and their attachments."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Query, Response
from starlette.responses import RedirectResponse, StreamingResponse

from app.core.params import QueryText, QueryTime, error_responses
from app.core.security import Scope
from app.db.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Position, build_page, decode_cursor
from app.deps import SessionDep, SettingsDep, StorageDep
from app.emails.downloads import (
    BINARY_CONTENT,
    find_attachment,
    presigned_redirect,
    stream_attachment,
    stream_raw_message,
)
from app.emails.errors import (
    AttachmentNotFound,
    EmailNotFound,
    ThreadNotFound,
)
from app.emails.repository import AttachmentRepository, EmailFilters, EmailRepository
from app.emails.schemas import AttachmentOut, EmailDetail, EmailListItem, EmailPage, ThreadOut
from app.emails.service import delete_email
from app.emails.threads import ThreadRepository
from app.mail.category import Category
from app.users.deps import require_scopes

router = APIRouter(tags=["emails"])

READ = [require_scopes(Scope.EMAILS_READ)]
NOT_FOUND = error_responses(401, 403, 404, 422, 500)
CURSOR_ERRORS = error_responses(401, 403, 422, 500, extra={400: "`invalid_cursor`"})


@router.get(
    "/emails",
    response_model=EmailPage,
    dependencies=READ,
    responses=CURSOR_ERRORS,
    summary="List emails, newest first",
    description=(
        "Keyset pagination: pass `next_cursor` from one page as `cursor` for the next. "
        "Text filters match case-insensitively anywhere in the field. Times without a zone "
        "are UTC; the range is `received_after <= received_at < received_before`. With "
        "`thread_id`, the thread's emails oldest first (by Date, else arrival)."
    ),
)
async def list_emails(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
    from_: Annotated[
        QueryText | None,
        Query(alias="from", max_length=998, description="Part of the sender address"),
    ] = None,
    to: Annotated[
        QueryText | None,
        Query(max_length=998, description="Part of a To/Cc address or the envelope recipient"),
    ] = None,
    subject: Annotated[QueryText | None, Query(max_length=998)] = None,
    received_after: QueryTime | None = None,
    received_before: QueryTime | None = None,
    has_attachments: bool | None = None,
    category: Annotated[Category | None, Query(description="Only emails of this kind")] = None,
    thread_id: Annotated[
        uuid.UUID | None, Query(description="Only this conversation, oldest first")
    ] = None,
) -> EmailPage:
    filters = EmailFilters(
        from_contains=from_,
        to_contains=to,
        subject_contains=subject,
        received_after=received_after,
        received_before=received_before,
        has_attachments=has_attachments,
        category=category.value if category else None,
    )
    if thread_id is None:
        return await _newest_first(session, filters, cursor=cursor, limit=limit)
    thread = await ThreadRepository(session).resolve(thread_id)
    if thread is None:
        return EmailPage(items=[], next_cursor=None)
    return await _thread_order(
        session, replace(filters, thread_id=thread.id), cursor=cursor, limit=limit
    )


async def _newest_first(
    session: SessionDep, filters: EmailFilters, *, cursor: str | None, limit: int
) -> EmailPage:
    after = decode_cursor("emails", cursor) if cursor else None
    rows = await EmailRepository(session).page(
        filters, after=(after.received_at, after.id) if after else None, limit=limit + 1
    )
    page = build_page(
        "emails", rows, limit=limit, position_of=lambda row: Position(row[0].received_at, row[0].id)
    )
    return EmailPage(
        items=[EmailListItem.of(*row) for row in page.items], next_cursor=page.next_cursor
    )


async def _thread_order(
    session: SessionDep, filters: EmailFilters, *, cursor: str | None, limit: int
) -> EmailPage:
    after = decode_cursor("thread-emails", cursor) if cursor else None
    rows = await EmailRepository(session).thread_page(
        filters, after=(after.received_at, after.id) if after else None, limit=limit + 1
    )
    page = build_page(
        "thread-emails",
        rows,
        limit=limit,
        position_of=lambda row: Position(row[0].sent_at or row[0].received_at, row[0].id),
    )
    return EmailPage(
        items=[EmailListItem.of(*row) for row in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/threads/{thread_id}",
    response_model=ThreadOut,
    dependencies=READ,
    responses=error_responses(401, 403, 422, 500, extra={404: "`thread_not_found`"}),
    summary="A conversation and its emails, oldest first",
    description=(
        "An id of a thread that was since merged into another (a message linked the two) "
        "answers with the thread that survived, under its own id."
    ),
)
async def get_thread(
    thread_id: uuid.UUID,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = MAX_PAGE_SIZE,
) -> ThreadOut:
    thread = await ThreadRepository(session).resolve(thread_id)
    if thread is None:
        raise ThreadNotFound()
    rows = await EmailRepository(session).thread_page(
        EmailFilters(thread_id=thread.id), after=None, limit=limit + 1
    )
    return ThreadOut(
        id=thread.id,
        email_count=await EmailRepository(session).count_in_thread(thread.id),
        emails=[EmailListItem.of(*row) for row in rows[:limit]],
        truncated=len(rows) > limit,
    )


@router.get(
    "/emails/{email_id}",
    response_model=EmailDetail,
    dependencies=READ,
    responses=NOT_FOUND,
    summary="One email: headers of note, bodies, spam and authentication results, attachments",
)
async def get_email(email_id: uuid.UUID, session: SessionDep) -> EmailDetail:
    email = await EmailRepository(session).get(email_id)
    if email is None:
        raise EmailNotFound()
    attachments = await AttachmentRepository(session).list_for_email(email_id)
    thread_id = await ThreadRepository(session).thread_of(email.thread_key)
    return EmailDetail.of(email, list(attachments), thread_id)


@router.get(
    "/emails/{email_id}/raw",
    response_class=StreamingResponse,
    dependencies=READ,
    responses={
        200: {"content": {"message/rfc822": BINARY_CONTENT}, "description": "The source"},
        **error_responses(
            401,
            403,
            422,
            500,
            extra={
                404: "`email_not_found`, `raw_message_not_available` (the email was built from "
                "Mandrill's parsed fields) or `blob_not_found`"
            },
        ),
    },
    summary="The original message (RFC 822) as Mandrill delivered it",
)
async def get_raw_email(
    email_id: uuid.UUID, session: SessionDep, store: StorageDep
) -> StreamingResponse:
    return await stream_raw_message(session, store, email_id)


@router.delete(
    "/emails/{email_id}",
    status_code=204,
    response_class=Response,
    dependencies=[require_scopes(Scope.EMAILS_DELETE)],
    responses=NOT_FOUND,
    summary="Delete an email, its attachments and the blobs no other email shares",
)
async def remove_email(email_id: uuid.UUID, session: SessionDep, store: StorageDep) -> Response:
    await delete_email(session, store, email_id)
    return Response(status_code=204)


@router.get(
    "/attachments/{attachment_id}",
    response_model=AttachmentOut,
    dependencies=READ,
    responses=NOT_FOUND,
    summary="Attachment metadata",
)
async def get_attachment(attachment_id: uuid.UUID, session: SessionDep) -> AttachmentOut:
    attachment = await AttachmentRepository(session).get(attachment_id)
    if attachment is None:
        raise AttachmentNotFound()
    return AttachmentOut.of(attachment)


@router.get(
    "/attachments/{attachment_id}/content",
    response_class=StreamingResponse,
    dependencies=READ,
    responses={
        # The attachment's own stored content type, whatever it is.
        200: {"content": {"*/*": BINARY_CONTENT}, "description": "Bytes"},
        307: {"description": "With `redirect=true` on S3 storage: a presigned download URL"},
        **NOT_FOUND,
    },
    summary="Download an attachment",
    description=(
        "Streams the bytes with the stored content type and `Content-Disposition: attachment`. "
        "With `redirect=true` and S3 storage, answers 307 to a presigned URL valid for "
        "PRESIGNED_URL_TTL_SECONDS instead; local storage always streams."
    ),
)
async def download_attachment(
    attachment_id: uuid.UUID,
    session: SessionDep,
    store: StorageDep,
    settings: SettingsDep,
    redirect: bool = False,
) -> Response:
    attachment = await find_attachment(session, attachment_id)
    if redirect:
        moved: RedirectResponse | None = await presigned_redirect(
            store,
            attachment.blob_key,
            filename=attachment.filename,
            content_type=attachment.content_type,
            expires_in=settings.presigned_url_ttl_seconds,
        )
        if moved is not None:
            return moved
    return await stream_attachment(store, attachment)
