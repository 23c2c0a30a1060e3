"""Send a test email: a pasted or uploaded message goes in as a Mandrill inbound event would.

It is classified and stored by the same code as a signed webhook batch (`classify_batch`, then
the app's `Intake`), so the worker processes it like any other and it shows up in the inbox;
its webhook event is an ordinary `inbound` event. A second submission of the same message to
the same address is a duplicate, exactly as a retried webhook would be.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Annotated, Any

import structlog
from fastapi import Query, Request
from starlette.datastructures import UploadFile
from starlette.responses import RedirectResponse, Response

from app.console.deps import AnyViewer, FormViewer, require
from app.console.pages import PREFIX, render
from app.console.routing import console_router
from app.core.security import Scope
from app.deps import IntakeDep, SessionDep
from app.emails.repository import EmailRepository
from app.mandrill.classify import classify_batch

router = console_router()
logger = structlog.get_logger("app.console")

_ADDRESS = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+$")
_HEADER_LINE = re.compile(rb"^[!-9;-~]+:", re.MULTILINE)
MAX_ADDRESS_CHARS = 320


def inbound_event(raw: bytes, *, recipient: str) -> dict[str, Any]:
    """A Mandrill inbound event for `raw` received at `recipient`; like Mandrill's, `raw_msg`
    carries the message and `email` the receiving address (the rest is read from the raw)."""
    return {
        "event": "inbound",
        "ts": int(time.time()),
        "msg": {
            # As the webhook tests do: undecodable bytes survive the round trip to the parser.
            "raw_msg": raw.decode("utf-8", "surrogateescape"),
            "email": recipient,
            "tags": [],
        },
    }


async def _page(
    request: Request,
    session: SessionDep,
    *,
    error: str | None = None,
    recipient: str = "",
    sent: uuid.UUID | None = None,
    duplicate: bool = False,
    status: int = 200,
) -> Response:
    recipients = await EmailRepository(session).recent_recipients()
    return render(
        request,
        "test_email.html",
        {
            "error": error,
            "recipient": recipient or (recipients[0] if recipients else ""),
            "recipients": recipients,
            "sent": sent,
            "duplicate": duplicate,
        },
        status=status,
    )


@router.get("/test-email")
async def send_form(
    request: Request,
    viewer: AnyViewer,
    session: SessionDep,
    sent: uuid.UUID | None = None,
    duplicate: Annotated[bool, Query()] = False,
) -> Response:
    require(viewer, Scope.EVENTS_REPLAY)
    return await _page(request, session, sent=sent, duplicate=duplicate)


@router.post("/test-email")
async def send(
    request: Request, viewer: FormViewer, session: SessionDep, intake: IntakeDep
) -> Response:
    require(viewer, Scope.EVENTS_REPLAY)
    form = await request.form()
    recipient = str(form.get("recipient") or "").strip()
    upload = form.get("file")
    raw = b""
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read()
    if not raw:
        raw = str(form.get("raw") or "").encode("utf-8", "surrogateescape")
    problem = None
    if len(recipient) > MAX_ADDRESS_CHARS or not _ADDRESS.match(recipient):
        problem = "The receiving address must look like inbox@example.com."
    elif not raw.strip():
        problem = "Paste a message or choose an .eml file."
    elif not _HEADER_LINE.search(raw[:65536]):
        problem = "That does not look like an email: it has no header lines (Name: value)."
    if problem:
        return await _page(request, session, error=problem, recipient=recipient, status=400)
    events = classify_batch([inbound_event(raw, recipient=recipient)])
    # The store commits on a connection of its own; on SQLite there is one per process, and
    # this request's session (which read the user) must hand it back first.
    await session.close()
    result = await intake.accept(events, received=1)
    logger.info(
        "console.test_email.accepted",
        user_id=str(viewer.user.id),
        accepted=len(result.accepted_ids),
        bytes=len(raw),
    )
    if not result.accepted_ids:
        return RedirectResponse(f"{PREFIX}/test-email?duplicate=true", status_code=303)
    return RedirectResponse(f"{PREFIX}/test-email?sent={result.accepted_ids[0]}", status_code=303)
