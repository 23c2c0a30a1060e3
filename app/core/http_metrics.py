"""Request counts and durations by route template and status (observed by the edge middleware).

Labels are route templates (`/api/v1/emails/{email_id}`), never raw paths: a raw path would
make one time series per id, and the audience webhook's path carries a secret token.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import Scope

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


class RequestMetrics:
    """Counts requests and observes their duration by method, route template and status.

    Called once per request by the edge middleware. The labelled children are cached: looking
    them up by keyword labels on every request showed in the ack path's profile.
    """

    def __init__(self, prefixes: Iterable[str] = ()) -> None:
        self.prefixes = frozenset(prefixes)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        key = (method, route_template(scope, self.prefixes), status)
        children = self._children.get(key)
        if children is None:
            labels = {"method": key[0], "route": key[1], "status": str(status)}
            children = (HTTP_REQUESTS.labels(**labels), HTTP_REQUEST_SECONDS.labels(**labels))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


HTTP_REQUESTS = Counter(
    "kave_http_requests_total",
    "HTTP requests by method, route template and status",
    ["method", "route", "status"],
)


HTTP_REQUEST_SECONDS = Histogram(
    "kave_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
