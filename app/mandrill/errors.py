"""Errors of the Mandrill webhook."""

from __future__ import annotations

from types import MappingProxyType

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
    # The body was not read: closing saves draining it to keep the connection.
    headers = MappingProxyType({"Retry-After": "5", "Connection": "close"})


class LargeBodyTooSlow(AppError):
    status_code = 408
    code = "request_timeout"
    message = "The request body did not arrive within LARGE_BODY_READ_SECONDS; send it again."
    headers = MappingProxyType({"Connection": "close"})
