"""Errors of the emails API."""

from __future__ import annotations

from app.core.errors import NotFound


class EmailNotFound(NotFound):
    code = "email_not_found"
    message = "No email with that id."


class AttachmentNotFound(NotFound):
    code = "attachment_not_found"
    message = "No attachment with that id."


class RawMessageNotAvailable(NotFound):
    code = "raw_message_not_available"
    message = "The email was built from Mandrill's parsed fields; no raw message was stored."


class ThreadNotFound(NotFound):
    code = "thread_not_found"
    message = "No thread with that id."
