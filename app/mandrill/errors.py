"""Errors of the Mandrill webhook."""

from __future__ import annotations

from app.core.errors import AppError


class InvalidSignature(AppError):
    status_code = 401
    code = "invalid_signature"
    message = "The webhook signature is missing or does not match."
