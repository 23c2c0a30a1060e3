"""Errors of mail parsing."""

from __future__ import annotations

from app.core.errors import AppError


class UnparseableMessage(AppError):
    """Raised while processing an event whose message cannot be turned into an email."""

    status_code = 422
    code = "unparseable_message"
    message = "The message could not be parsed."
