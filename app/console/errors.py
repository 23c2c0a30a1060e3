"""The console's errors, and the handlers that answer every console failure with an HTML page.

The API keeps its JSON envelope; a person in a browser gets a page saying what happened, with
the request id, and (for a missing sign-in) is sent to the sign-in form.
"""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import quote

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response

from app.console.pages import PREFIX, render_error
from app.core.errors import AppError, NotAuthenticated, PermissionDenied
from app.core.outages import database_unavailable

logger = structlog.get_logger("app.console")


class SignInRequired(NotAuthenticated):
    code = "sign_in_required"
    message = "Sign in to use the console."


class ScopeRequired(PermissionDenied):
    message = "Your account does not hold the permission this page needs."


class CsrfRefused(PermissionDenied):
    code = "csrf_refused"
    message = (
        "The form's security token is missing or does not match your session. Reload the "
        "page and submit it again."
    )


def sign_in_redirect(request: Request) -> RedirectResponse:
    here = request.url.path
    query = f"?{request.url.query}" if request.url.query else ""
    if request.method != "GET":
        return RedirectResponse(f"{PREFIX}/login", status_code=303)
    return RedirectResponse(f"{PREFIX}/login?next={quote(here + query, safe='')}", status_code=303)


async def _app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    if isinstance(exc, NotAuthenticated):
        return sign_in_redirect(request)
    if exc.status_code >= 500:
        logger.warning("console.request_failed", code=exc.code, status=exc.status_code)
    return render_error(request, status=exc.status_code, message=exc.message, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    messages = {
        404: "There is no console page at this address.",
        405: "This page does not accept that kind of request.",
    }
    message = messages.get(exc.status_code, HTTPStatus(exc.status_code).phrase + ".")
    return render_error(request, status=exc.status_code, message=message)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    # An id in the path that is no UUID names nothing: a 404, as for an unknown id.
    if any(err.get("loc", ("",))[0] == "path" for err in exc.errors()):
        return render_error(request, status=404, message="There is nothing with this id.")
    fields = sorted({str(err.get("loc", ("", "?"))[-1]) for err in exc.errors()})
    return render_error(
        request, status=400, message=f"Some fields are not valid: {', '.join(fields)}."
    )


def unexpected_error_page(request: Request, exc: Exception) -> Response:
    if database_unavailable(exc):
        logger.warning("console.database_unavailable", exc_type=type(exc).__name__)
        return render_error(
            request,
            status=503,
            message="The database is unavailable. Try again in a moment.",
            headers={"Retry-After": "5"},
        )
    logger.error("console.unhandled_exception", exc_type=type(exc).__name__, exc_info=exc)
    return render_error(request, status=500, message="Something went wrong on Kave's side.")


def register_console_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
