"""The edge: one pure ASGI middleware for what every request gets.

Request id, body-size limit, security headers, metrics, one access-log line, and a 500 in the
envelope for anything unhandled. They were four middlewares; each layer costs a coroutine and
a `send` wrapper per request, which showed in the acknowledgement path's profile, so they are
one. `BaseHTTPMiddleware` is avoided on purpose: it costs throughput and breaks context
variables.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import error_response, unhandled_error_response
from app.core.http_metrics import RequestMetrics
from app.core.request_context import request_id_var

access_logger = structlog.get_logger("app.access")
error_logger = structlog.get_logger("app.errors")

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# The audience webhook's secret token lives in its path (/api/v1/webhooks/mailchimp/audience/
# <token>). Whatever follows `audience` in a path under `webhooks` is masked, however it is
# written (doubled slashes, other case, dot segments, a trailing part, a missing slash), so a
# mistyped or mangled URL does not log the token either. Plain searches: linear in the path.
_WEBHOOKS = re.compile("webhooks", re.IGNORECASE)
_AUDIENCE = re.compile("audience", re.IGNORECASE)
PATH_MASK = "***"


def loggable_path(path: str, secrets: re.Pattern[str] | None = None) -> str:
    """`path` as it may be logged: the audience token, and any of `secrets`, masked."""
    webhooks = _WEBHOOKS.search(path)
    audience = _AUDIENCE.search(path, webhooks.end()) if webhooks else None
    if audience is not None and audience.end() < len(path):
        path = f"{path[: audience.end()]}/{PATH_MASK}"
    return secrets.sub(PATH_MASK, path) if secrets is not None else path


def secrets_pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern for the non-empty `secrets`, else None."""
    words = sorted({s for s in secrets if s}, key=len, reverse=True)
    if not words:
        return None
    return re.compile("|".join(map(re.escape, words)), re.IGNORECASE)


# The API docs pages and their files are Kave's own (app/apidocs.py): nothing from elsewhere.
# Styles may be inline (ReDoc and Swagger UI set them from script); scripts may not.
_DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_API_CSP = "default-src 'none'; frame-ancestors 'none'"
_DOCS_CSP_BYTES = _DOCS_CSP.encode()
_API_CSP_BYTES = _API_CSP.encode()


Endpoint = Callable[[Request], Awaitable[Response]]

# Every route but the `large_body_paths` (the Mandrill webhook) takes small bodies: a token
# form, a user's JSON, an audience webhook's form. The framework reads a body before it checks
# credentials, so this bounds what an anonymous request can make it hold.
SMALL_BODY_BYTES = 1024 * 1024


class BodyTooLarge(Exception):
    """Raised inside `receive` when the streamed body passes the limit."""


class EdgeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        api_prefix: str,
        metric_prefixes: Iterable[str] = (),
        shortcuts: Mapping[tuple[str, str], Endpoint] | None = None,
        path_secrets: Iterable[str] = (),
        large_body_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        # Secrets masked wherever they appear in a logged path (the audience token, also
        # outside its own route).
        self.path_secrets = secrets_pattern(path_secrets)
        # (method, path) -> the endpoint of a route with that exact, parameterless path. Its
        # requests skip the framework's routing, dependency and exception layers (a tenth of
        # the webhook's CPU) and are handled here, by the same endpoint function the route
        # declares; the route still documents it and would serve it without the shortcut.
        self.shortcuts = {
            key: (Route(key[1], endpoint, methods=[key[0]]), endpoint)
            for key, endpoint in (shortcuts or {}).items()
        }
        self.max_body_bytes = max_body_bytes
        self.small_body_bytes = min(max_body_bytes, SMALL_BODY_BYTES)
        self.large_body_paths = frozenset(large_body_paths)
        self.api_prefix = api_prefix
        self.docs_paths = (f"{api_prefix}/docs", f"{api_prefix}/redoc")
        self.metrics = RequestMetrics(metric_prefixes)

    def _security_headers(self, path: str) -> list[tuple[bytes, bytes]]:
        docs = path.startswith(self.docs_paths)
        headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"content-security-policy", _DOCS_CSP_BYTES if docs else _API_CSP_BYTES),
        ]
        # API answers carry mail contents and tokens: no shared or browser cache keeps them.
        if path.startswith(self.api_prefix) and not docs:
            headers.append((b"cache-control", b"no-store"))
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = declared = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
            elif name == b"content-length":
                declared = value
        request_id = incoming if incoming and _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        response_started = overflowed = False
        received = 0
        path = scope["path"]
        max_bytes = self.max_body_bytes if path in self.large_body_paths else self.small_body_bytes
        head = scope["method"] == "HEAD"

        async def edge_receive() -> Message:
            nonlocal received, overflowed
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    overflowed = True
                    raise BodyTooLarge
            return message

        async def edge_send(message: Message) -> None:
            nonlocal status, response_started
            if overflowed:
                # The app caught BodyTooLarge and answers something else (FastAPI makes a body
                # it could not read a 400): that answer is dropped, the 413 goes instead.
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = [h for h in message.get("headers", ()) if h[0].lower() != b"x-request-id"]
                present = {name.lower() for name, _ in headers}
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                headers.extend(h for h in self._security_headers(path) if h[0] not in present)
                message["headers"] = headers
            elif head and message.get("body"):
                # HEAD: the headers a GET would get (its Content-Length too), never a body.
                message = {**message, "body": b""}
            await send(message)

        try:
            shortcut = self.shortcuts.get((scope["method"], path))
            if declared is not None and _declared_size(declared) > max_bytes:
                await self._too_large(scope, receive, edge_send, max_bytes)
            elif shortcut is not None:
                await _serve(shortcut, scope, edge_receive, edge_send)
            else:
                await self.app(scope, edge_receive, edge_send)
            if overflowed:
                raise BodyTooLarge
        except BodyTooLarge:
            if response_started:
                raise
            overflowed = False
            await self._too_large(scope, receive, edge_send, max_bytes)
        except Exception as exc:
            if overflowed and not response_started:  # an error raised while failing on it
                overflowed = False
                await self._too_large(scope, receive, edge_send, max_bytes)
                return
            # Answered here rather than by Starlette's outermost handler, so the answer still
            # carries the request id: a 503 when the database is unreachable, else a 500.
            if response_started:
                error_logger.error(
                    "request.unhandled_exception", exc_type=type(exc).__name__, exc_info=exc
                )
                raise
            await unhandled_error_response(exc)(scope, receive, edge_send)
        finally:
            seconds = time.perf_counter() - started
            self.metrics.observe(scope, status, seconds)
            client = scope.get("client")
            access_logger.info(
                "http.request",
                # As trusted: uvicorn has already put a believed X-Forwarded-For (from a peer
                # in FORWARDED_ALLOW_IPS) here; otherwise it is the peer's own address.
                client=client[0] if client else None,
                method=scope["method"],
                path=loggable_path(scope["path"], self.path_secrets),
                status=status,
                duration_ms=round(seconds * 1000, 2),
            )
            # Routes may bind more (e.g. the webhook's counts); none of it outlives the request.
            structlog.contextvars.clear_contextvars()
            request_id_var.reset(token)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = error_response(
            413,
            "payload_too_large",
            f"The request body is larger than the limit of {limit} bytes.",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


async def _serve(
    shortcut: tuple[Route, Endpoint], scope: Scope, receive: Receive, send: Send
) -> None:
    route, endpoint = shortcut
    scope["route"] = route  # what the metrics label requests by
    request = Request(scope, receive, send)
    try:
        response = await endpoint(request)
    except Exception as exc:
        # The app's own handlers, as its exception middleware picks them (by the exception's
        # class, most specific first, short of `Exception`); the rest go on to the edge.
        handlers = scope["app"].exception_handlers
        specific = type(exc).__mro__[: type(exc).__mro__.index(Exception)]
        handler = next((handlers[cls] for cls in specific if cls in handlers), None)
        if handler is None:
            raise
        response = await handler(request, exc)
    await response(scope, receive, send)


def _declared_size(value: bytes) -> int:
    try:
        return int(value)
    except ValueError:
        return -1
