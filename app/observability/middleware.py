"""Pure ASGI middleware counting and timing requests by route template and status.

Labels are route templates (`/api/v1/emails/{email_id}`), never raw paths: a raw path would
make one time series per id, and the audience webhook's path carries a secret token.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.metrics import HTTP_REQUEST_SECONDS, HTTP_REQUESTS

UNMATCHED = "<unmatched>"
# A route matched under a prefix the middleware was not told about: never echo the raw text.
UNKNOWN_PREFIX = "<prefix>"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope, prefixes: frozenset[str] = frozenset()) -> str:
    """The matched route's template, with the prefix it was included under; else UNMATCHED.

    Starlette puts the matched route in `scope["route"]`. Recent FastAPI versions include
    routers lazily and leave the route's own template relative to the include prefix, so the
    prefix is read off the path (the segments the template does not cover) and kept only if it
    is one of the known, static `prefixes`.
    """
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str) or not template.startswith("/"):
        return UNMATCHED
    path: str = scope.get("path", "")
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    extra = path.rstrip("/").count("/") - template.rstrip("/").count("/")
    if extra <= 0:
        return template
    prefix = "/".join(path.split("/")[: extra + 1])
    return (prefix if prefix in prefixes else UNKNOWN_PREFIX) + template


class HTTPMetricsMiddleware:
    """Counts requests and observes their duration by method, route template and status."""

    def __init__(self, app: ASGIApp, prefixes: Iterable[str] = ()) -> None:
        self.app = app
        self.prefixes = frozenset(prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # Unless a response starts, an exception escaped: the outer middleware answers 500.
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            labels = {
                "method": method,
                "route": route_template(scope, self.prefixes),
                "status": str(status),
            }
            HTTP_REQUESTS.labels(**labels).inc()
            HTTP_REQUEST_SECONDS.labels(**labels).observe(time.perf_counter() - started)
