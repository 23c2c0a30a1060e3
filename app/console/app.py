"""The operator console as an ASGI app of its own, mounted at /console by `create_app`.

A mounted app has its own exception handlers, so console failures are HTML pages while the
API keeps its JSON envelope, and its own 404 for unknown console paths. It shares the main
app's state (the services the lifespan builds, the rate limiter), so it runs no lifespan.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import State
from starlette.responses import Response
from starlette.types import Scope

from app.console import dashboard, destinations, events, inbox, message, send_mail, signin
from app.console.errors import register_console_error_handlers
from app.console.pages import HERE


class StaticAssets(StaticFiles):
    """The console's stylesheet and icon, cached for an hour."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=3600"
        return response


def build_console(state: State) -> FastAPI:
    console = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, redirect_slashes=False)
    console.state = state
    register_console_error_handlers(console)
    for module in (signin, dashboard, inbox, message, events, send_mail, destinations):
        console.include_router(module.router)
    console.mount("/static", StaticAssets(directory=HERE / "static"), name="static")
    return console
