"""One email: its page, its HTML body in a sandboxed frame, attachments, raw source, deletion."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Sequence
from urllib.parse import unquote

from fastapi import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from app.console.deps import EmailsReader, FormViewer, require
from app.console.pages import PREFIX, render
from app.console.routing import console_router
from app.core.security import Scope
from app.deps import SessionDep, StorageDep
from app.emails.downloads import find_attachment, stream_attachment, stream_raw_message
from app.emails.errors import EmailNotFound, RawMessageNotAvailable
from app.emails.models import Attachment, Email
from app.emails.repository import AttachmentRepository, EmailRepository
from app.emails.service import delete_email
from app.storage.base import BlobNotFound, BlobStore

router = console_router()

SOURCE_SHOWN_BYTES = 1024 * 1024  # the page shows this much of the source; the download has all
# Inline images (`cid:` references) are put into the body as data: URIs, up to this much in
# all per body; the rest keep their cid: reference and show as broken images.
INLINE_IMAGES_SHOWN_BYTES = 5 * 1024 * 1024
# `cid:` as a word of its own (not the end of `lucid:`), up to a quote, space, bracket or `>`.
_CID = re.compile(r"""(?<![\w.+-])cid:([^\s"'<>()]+)""", re.IGNORECASE)
_IMAGE_TYPE = re.compile(r"image/[a-z0-9.+-]+")


def body_csp(*, remote_images: bool) -> str:
    """The mail's HTML runs nothing and fetches nothing from elsewhere: no script at all (the
    `sandbox` directive, on top of the frame's own sandbox, also covers the body opened on its
    own), inline styles only, images from `data:` only unless the operator asked for remote ones
    (which tell the sender the mail was read)."""
    images = "data: https: http:" if remote_images else "data:"
    return (
        f"default-src 'none'; style-src 'unsafe-inline'; img-src {images}; "
        "sandbox; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
    )


async def _email(session: SessionDep, email_id: uuid.UUID) -> Email:
    email = await EmailRepository(session).get(email_id)
    if email is None:
        raise EmailNotFound()
    return email


@router.get("/emails/{email_id}")
async def message_page(
    request: Request,
    email_id: uuid.UUID,
    viewer: EmailsReader,
    session: SessionDep,
    remote_images: bool = False,
) -> Response:
    email = await _email(session, email_id)
    attachments = await AttachmentRepository(session).list_for_email(email_id)
    thread = await EmailRepository(session).thread_of(email)
    return render(
        request,
        "message.html",
        {
            "email": email,
            "attachments": attachments,
            "thread": thread,
            "has_thread": True,
            "category": getattr(email, "category", None),
            "remote_images": remote_images,
        },
    )


async def with_inline_images(html: str, attachments: Sequence[Attachment], store: BlobStore) -> str:
    """`html` with each `cid:` reference to one of the email's own inline images replaced by
    the image as a data: URI: the only images the body's CSP lets in without the operator's
    say-so, and the only way to show them in a frame that sends no cookies. Files found
    inside a forwarded message are not the outer body's, so only top-level ones count.

    The budget counts every URI put in, so an image referenced a thousand times costs a
    thousand times its size and the references past the budget stay as they were."""
    wanted = {unquote(ref).lower() for ref in _CID.findall(html)}
    if not wanted:
        return html
    images: dict[str, Attachment] = {}
    for attachment in attachments:
        cid = (attachment.content_id or "").lower()
        if (
            cid in wanted
            and cid not in images
            and attachment.parent_id is None
            and _IMAGE_TYPE.fullmatch(attachment.content_type.lower())
        ):
            images[cid] = attachment
    uris: dict[str, str] = {}
    loaded = 0
    for cid, attachment in images.items():
        if loaded + attachment.size > INLINE_IMAGES_SHOWN_BYTES:
            continue  # read no more than the budget could show
        loaded += attachment.size
        try:
            data = await store.get(attachment.blob_key)
        except BlobNotFound:
            continue  # purged or lost: the image shows as broken, the page still opens
        kind = attachment.content_type.lower()
        uris[cid] = f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"
    budget = INLINE_IMAGES_SHOWN_BYTES * 4 // 3 + 4  # the budget in base64

    def replaced(ref: re.Match[str]) -> str:
        nonlocal budget
        uri = uris.get(unquote(ref.group(1)).lower())
        if uri is None or len(uri) > budget:
            return ref.group(0)
        budget -= len(uri)
        return uri

    return _CID.sub(replaced, html)


@router.get("/emails/{email_id}/body")
async def message_body(
    email_id: uuid.UUID,
    viewer: EmailsReader,
    session: SessionDep,
    store: StorageDep,
    remote_images: bool = False,
) -> Response:
    email = await _email(session, email_id)
    html = email.html_body or ""
    if _CID.search(html):
        attachments = await AttachmentRepository(session).list_for_email(email_id)
        html = await with_inline_images(html, attachments, store)
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": body_csp(remote_images=remote_images),
            "X-Frame-Options": "SAMEORIGIN",
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/emails/{email_id}/source")
async def message_source(
    request: Request,
    email_id: uuid.UUID,
    viewer: EmailsReader,
    session: SessionDep,
    store: StorageDep,
) -> Response:
    email = await _email(session, email_id)
    if email.raw_blob_key is None:
        raise RawMessageNotAvailable()
    stream = await store.open_stream(email.raw_blob_key)
    shown = bytearray()
    try:
        async for chunk in stream:
            shown.extend(chunk)
            if len(shown) >= SOURCE_SHOWN_BYTES:
                break
    finally:
        await stream.aclose()
    return render(
        request,
        "source.html",
        {
            "email": email,
            "source": bytes(shown[:SOURCE_SHOWN_BYTES]).decode("utf-8", "replace"),
            "truncated": email.raw_size > SOURCE_SHOWN_BYTES,
        },
    )


@router.get("/emails/{email_id}/raw")
async def message_raw(
    email_id: uuid.UUID, viewer: EmailsReader, session: SessionDep, store: StorageDep
) -> Response:
    return await stream_raw_message(session, store, email_id)


@router.get("/attachments/{attachment_id}")
async def attachment_download(
    attachment_id: uuid.UUID, viewer: EmailsReader, session: SessionDep, store: StorageDep
) -> Response:
    return await stream_attachment(store, await find_attachment(session, attachment_id))


@router.get("/emails/{email_id}/delete")
async def confirm_delete(
    request: Request, email_id: uuid.UUID, viewer: EmailsReader, session: SessionDep
) -> Response:
    require(viewer, Scope.EMAILS_DELETE)
    email = await _email(session, email_id)
    return render(
        request,
        "confirm.html",
        {
            "title": "Delete this email?",
            "what": f"“{email.subject or '(no subject)'}” from {email.from_address or 'unknown'}",
            "consequence": "The email, its attachments and its raw source are removed for good, "
            "with the payload of the webhook event behind it. This cannot be undone.",
            "action": f"{PREFIX}/emails/{email.id}/delete",
            "button": "Delete the email",
            "back": f"{PREFIX}/emails/{email.id}",
        },
    )


@router.post("/emails/{email_id}/delete")
async def delete(
    email_id: uuid.UUID, viewer: FormViewer, session: SessionDep, store: StorageDep
) -> Response:
    require(viewer, Scope.EMAILS_DELETE)
    await delete_email(session, store, email_id)
    return RedirectResponse(f"{PREFIX}/emails?deleted=true", status_code=303)
