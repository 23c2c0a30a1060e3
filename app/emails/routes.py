"""Stored emails and their attachments."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response
from starlette.responses import RedirectResponse, StreamingResponse

from app.core.params import QueryText, QueryTime, error_responses
from app.core.security import Scope
from app.db.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Position, build_page, decode_cursor
from app.deps import SessionDep, SettingsDep, StorageDep
from app.emails.downloads import BINARY_CONTENT, presigned_redirect, stream_blob
from app.emails.errors import AttachmentNotFound, EmailNotFound, RawMessageNotAvailable
from app.emails.repository import AttachmentRepository, EmailFilters, EmailRepository
from app.emails.schemas import AttachmentOut, EmailDetail, EmailListItem, EmailPage
from app.emails.service import delete_email
from app.storage.base import attachment_content_disposition
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
        "are UTC; the range is `received_after <= received_at < received_before`."
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
) -> EmailPage:
    filters = EmailFilters(
        from_contains=from_,
        to_contains=to,
        subject_contains=subject,
        received_after=received_after,
        received_before=received_before,
        has_attachments=has_attachments,
    )
    after = decode_cursor("emails", cursor) if cursor else None
    rows = await EmailRepository(session).page(
        filters, after=(after.received_at, after.id) if after else None, limit=limit + 1
    )
    page = build_page(
        "emails", rows, limit=limit, position_of=lambda row: Position(row[0].received_at, row[0].id)
    )
    return EmailPage(
        items=[EmailListItem.of(email, count) for email, count in page.items],
        next_cursor=page.next_cursor,
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
    return EmailDetail.of(email, list(attachments))


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
    email = await EmailRepository(session).get(email_id)
    if email is None:
        raise EmailNotFound()
    if email.raw_blob_key is None:
        raise RawMessageNotAvailable()
    return await stream_blob(
        store,
        email.raw_blob_key,
        content_type="message/rfc822",
        disposition=attachment_content_disposition(f"{email.id}.eml"),
        size=email.raw_size,
    )


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
    attachment = await AttachmentRepository(session).get(attachment_id)
    if attachment is None:
        raise AttachmentNotFound()
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
    return await stream_blob(
        store,
        attachment.blob_key,
        content_type=attachment.content_type,
        disposition=attachment_content_disposition(attachment.filename),
        size=attachment.size,
    )
