"""The one error tree and the one set of handlers that turn every failure into the envelope.

Every error response looks like
`{"error": {"code", "message", "details", "request_id"}}` whatever raised it: a domain error,
request validation, routing (404/405), the body limit (413), the rate limiter (429), the
database being unreachable (503) or a bug (500).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from types import MappingProxyType
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.outages import database_unavailable, outage_sqlstate
from app.core.request_context import current_request_id
from app.core.responses import JSONResponse

logger = structlog.get_logger("app.errors")


class AppError(Exception):
    status_code: int = 500
    code: str = "internal_error"
    message: str = "An unexpected error occurred."
    headers: Mapping[str, str] | None = None

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Sequence[Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.message = message or type(self).message
        self.details = list(details or [])
        if headers is not None:
            self.headers = headers
        super().__init__(self.message)


class BadRequest(AppError):
    status_code = 400
    code = "bad_request"
    message = "The request could not be understood."


class MalformedPayload(BadRequest):
    code = "malformed_payload"
    message = "The webhook payload is not in the expected format."


class NotAuthenticated(AppError):
    status_code = 401
    code = "not_authenticated"
    message = "A valid bearer token is required."
    headers = MappingProxyType({"WWW-Authenticate": "Bearer"})


class PermissionDenied(AppError):
    status_code = 403
    code = "permission_denied"
    message = "The token does not grant the scope this operation needs."


class NotFound(AppError):
    status_code = 404
    code = "not_found"
    message = "The requested resource does not exist."


class Conflict(AppError):
    status_code = 409
    code = "conflict"
    message = "The request conflicts with the current state of the resource."


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"
    message = "The request body is larger than the configured limit."


class RateLimited(AppError):
    status_code = 429
    code = "rate_limited"
    message = "Too many requests; slow down and retry later."


class ServiceUnavailable(AppError):
    status_code = 503
    code = "service_unavailable"
    message = "A backing service is unavailable; retry later."
    headers = MappingProxyType({"Retry-After": "5"})


class UpstreamError(AppError):
    status_code = 502
    code = "upstream_error"
    message = "An upstream service answered with an error."


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[Any] = []
    request_id: str | None = None


class ErrorEnvelope(BaseModel):
    """The uniform error response; documented on every route."""

    error: ErrorBody


def error_response(
    status_code: int,
    code: str,
    message: str,
    *,
    details: Sequence[Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {
        "error": {
            "code": code,
            "message": message,
            "details": list(details or []),
            "request_id": current_request_id(),
        }
    }
    return JSONResponse(body, status_code=status_code, headers=dict(headers or {}))


_HTTP_CODES = {
    400: ("bad_request", "The request could not be understood."),
    401: ("not_authenticated", "A valid bearer token is required."),
    403: ("permission_denied", "This operation is not allowed."),
    404: ("not_found", "There is nothing at this path."),
    405: ("method_not_allowed", "This method is not allowed on this path."),
    413: ("payload_too_large", "The request body is larger than the configured limit."),
    415: ("unsupported_media_type", "The request's content type is not supported."),
    429: ("rate_limited", "Too many requests; slow down and retry later."),
}


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    if exc.status_code >= 500:
        logger.warning("request.failed", code=exc.code, status=exc.status_code)
    return error_response(
        exc.status_code, exc.code, exc.message, details=exc.details, headers=exc.headers
    )


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, default_message = _HTTP_CODES.get(
        exc.status_code, ("http_error", HTTPStatus(exc.status_code).phrase + ".")
    )
    message = exc.detail if isinstance(exc.detail, str) and exc.status_code != 404 else None
    return error_response(
        exc.status_code, code, message or default_message, headers=getattr(exc, "headers", None)
    )


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only location, message and type: the offending input may be a secret or a body.
    return [
        {"loc": list(err.get("loc", ())), "msg": str(err.get("msg", "")), "type": err.get("type")}
        for err in exc.errors()
    ]


_WHERE = {"query": "query parameter", "path": "path parameter", "header": "header"}
_MESSAGE_ERRORS = 3  # named in the message; `details` has them all


def _validation_message(details: Sequence[Mapping[str, Any]]) -> str:
    """`The request is not valid: query parameter 'limit': Input should be ...`."""
    parts = []
    for detail in details[:_MESSAGE_ERRORS]:
        where, *name = [str(part) for part in detail["loc"]] or ["request"]
        if detail["type"] == "json_invalid":
            name = []  # its location is a character position, not a field
        label = _WHERE.get(where, f"{where} field" if name else where)
        msg = detail["msg"].removeprefix("Value error, ").removesuffix(".")
        parts.append(f"{label} '{'.'.join(name)}': {msg}" if name else f"{label}: {msg}")
    if len(details) > _MESSAGE_ERRORS:
        parts.append(f"and {len(details) - _MESSAGE_ERRORS} more")
    return (
        "The request is not valid: " + "; ".join(parts) + "."
        if parts
        else "The request is not valid."
    )


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc)
    return error_response(422, "validation_error", _validation_message(details), details=details)


DATABASE_UNAVAILABLE = "The database is unavailable; retry later."


def unhandled_error_response(exc: Exception) -> JSONResponse:
    """The answer to an exception no handler took, on any route.

    The database being unreachable (refused, gone away, pool timeout, SQLite locked or not
    openable: `database_unavailable`) is no bug: a 503 with Retry-After and one warning line,
    as the webhook answers. Anything else is a 500 with its traceback. Only the exception's
    type is logged, never its text (it can quote statements or values).
    """
    if database_unavailable(exc):
        logger.warning(
            "request.database_unavailable",
            exc_type=type(exc).__name__,
            sqlstate=outage_sqlstate(exc),
        )
        return error_response(
            ServiceUnavailable.status_code,
            ServiceUnavailable.code,
            DATABASE_UNAVAILABLE,
            headers=ServiceUnavailable.headers,
        )
    logger.error("request.unhandled_exception", exc_type=type(exc).__name__, exc_info=exc)
    return error_response(500, "internal_error", "An unexpected error occurred.")


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    return unhandled_error_response(exc)


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": description}
    for status, description in {
        401: "Missing or invalid credentials",
        403: "Token lacks the required scope",
        404: "Not found",
        422: "Request validation failed",
        429: "Rate limited",
        500: "Unexpected error",
    }.items()
}
