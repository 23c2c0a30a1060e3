"""Errors of the Mandrill webhook."""

from __future__ import annotations

from app.core.errors import AppError, ServiceUnavailable


class InvalidSignature(AppError):
    status_code = 401
    code = "invalid_signature"
    message = "The webhook signature is missing or does not match."


class LargeBodiesBusy(ServiceUnavailable):
    code = "large_bodies_busy"
    message = (
        "As many large webhook bodies as this server takes at once are being received; retry later."
    )
