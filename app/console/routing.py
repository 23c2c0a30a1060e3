"""The console's route class: an unexpected exception becomes the console's 500 (or 503) page."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.console.errors import unexpected_error_page
from app.core.errors import AppError

_HANDLED = (AppError, StarletteHTTPException, RequestValidationError)


class ConsoleRoute(APIRoute):
    """Caught inside the route, not by an `Exception` handler: a mounted app's catch-all
    handler answers and then re-raises into the outer app, which logs the error again."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except _HANDLED:
                raise
            except Exception as exc:  # noqa: BLE001 (answered with a page, logged there)
                return unexpected_error_page(request, exc)

        return handle


def console_router() -> APIRouter:
    # Console pages are not part of the API: no response models, nothing in the OpenAPI.
    return APIRouter(route_class=ConsoleRoute, include_in_schema=False)
