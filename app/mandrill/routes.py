"""The Mandrill inbound endpoint: verify -> store -> commit -> 200, then process in background."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.routing import APIRoute
from starlette.datastructures import Headers, UploadFile

from app.core.errors import ErrorEnvelope
from app.core.middleware import Endpoint
from app.core.responses import WebhookAck, ack_response
from app.deps import Services, services
from app.mandrill.classify import classify_batch
from app.mandrill.errors import LargeBodiesBusy, LargeBodyTooSlow
from app.mandrill.form import EVENTS_FIELD, FormParams, decode_events, parse_form
from app.mandrill.signature import verify_mandrill_signature
from app.mandrill.streaming import (
    STREAM_THRESHOLD_BYTES,
    BodyStream,
    SpooledForm,
    read_streamed,
    verify_spooled,
)
from app.processing.ingest import offload_if_large

router = APIRouter(prefix="/webhooks/mailchimp", tags=["webhooks"])
logger = structlog.get_logger("app.mandrill")

_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorEnvelope, "description": "Authentic, but not a JSON array of events"},
    401: {"model": ErrorEnvelope, "description": "Missing or wrong X-Mandrill-Signature"},
    408: {
        "model": ErrorEnvelope,
        "description": "A large body not received within LARGE_BODY_READ_SECONDS",
    },
    413: {"model": ErrorEnvelope, "description": "Body over MAX_BODY_BYTES"},
    503: {
        "model": ErrorEnvelope,
        "description": "Database unreachable, or LARGE_BODIES_AT_ONCE large bodies already "
        "being received; Mailchimp will retry",
    },
}


@router.head("", response_class=Response, summary="Mailchimp's URL check (HEAD)")
async def url_check_head() -> Response:
    return Response(status_code=200)


@router.get("", response_class=Response, summary="Mailchimp's URL check (GET)")
async def url_check_get() -> Response:
    return Response(status_code=200)


def _is_large(headers: Headers) -> bool:
    """Over the streaming threshold, or of unknown size (sent chunked)."""
    declared = headers.get("content-length")
    return declared is None or not declared.isdigit() or int(declared) > STREAM_THRESHOLD_BYTES


@contextlib.asynccontextmanager
async def _turn(gate: asyncio.Semaphore, wait_seconds: float) -> AsyncIterator[None]:
    """One of the process's turns for a large body, waited for up to `wait_seconds`: the
    body is not read meanwhile (TCP holds it back), and past that the sender is told to retry
    (Mailchimp does), so a crowd of large bodies, unsigned ones included, can neither fill
    the disk with spool files nor the memory with authentic copies."""
    try:
        async with asyncio.timeout(wait_seconds):
            await gate.acquire()
    except TimeoutError:
        logger.warning("webhook.mandrill.large_bodies_busy", waited_seconds=wait_seconds)
        raise LargeBodiesBusy() from None
    try:
        yield
    finally:
        gate.release()


async def _by(deadline: float, stream: BodyStream) -> BodyStream:
    """`stream`, cut off with LargeBodyTooSlow once the loop's clock passes `deadline`. Only
    the wait for the next chunk is timed, never the decoding between chunks (which hands
    work to threads that a cancellation would not stop)."""
    async with contextlib.aclosing(stream):
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    chunk = await anext(stream)
            except StopAsyncIteration:
                return
            except TimeoutError:
                logger.warning("webhook.mandrill.large_body_too_slow")
                raise LargeBodyTooSlow() from None
            yield chunk


async def _read_params(
    request: Request, deadline: float | None
) -> tuple[FormParams | SpooledForm, int]:
    """The form and its size; `deadline` is set exactly for large bodies (`_is_large`)."""
    headers = request.headers
    if headers.get("content-type", "").startswith("multipart/form-data"):
        try:
            async with asyncio.timeout_at(deadline):
                form = await request.form(max_fields=100)
        except TimeoutError:
            raise LargeBodyTooSlow() from None
        params = [
            (k.encode(), v.encode("utf-8", "surrogateescape"))
            for k, v in form.multi_items()
            if not isinstance(v, UploadFile)
        ]
        return params, sum(len(v) for _, v in params)
    if deadline is not None:
        # Large or of unknown size: decoded while it streams in, never whole in memory.
        return await read_streamed(_by(deadline, request.stream()))
    # Read without `request.body()`, which keeps the body on the request until it ends: a
    # large batch's body is dropped as soon as its fields are decoded.
    body = b"".join([chunk async for chunk in request.stream()])
    return await offload_if_large(len(body), parse_form, body), len(body)


@router.post(
    "",
    response_model=None,
    responses={200: {"model": WebhookAck, "description": "Committed"}, **_ERRORS},
    summary="Receive a signed batch of Mandrill events",
    description=(
        "Form field `mandrill_events` (a JSON array), signed with `X-Mandrill-Signature`. "
        "Every new event is committed before the 200; repeats are counted as duplicates. "
        "The example is Mandrill's URL check (`[]` signed with the public key "
        "`test-webhook` over this server's MAILCHIMP_WEBHOOK_URL): Try it out sends it "
        "and gets `accepted: 0`. `send-test FILE.eml` signs a real message."
    ),
    # Documented only: the endpoint reads the form itself (streamed; no dependency to solve).
    openapi_extra={
        "parameters": [
            {
                "name": "X-Mandrill-Signature",
                "in": "header",
                "required": True,
                "description": "base64(HMAC-SHA1(webhook key, webhook URL + each form field's "
                "name and value, sorted by name))",
                "schema": {"type": "string"},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": [EVENTS_FIELD],
                        "properties": {
                            EVENTS_FIELD: {
                                "type": "string",
                                "description": "A JSON array of Mandrill events",
                                "example": "[]",
                            }
                        },
                    }
                }
            },
        },
    },
)
async def receive_mandrill_batch(request: Request) -> Response:
    # The hottest route: no dependencies to solve and no response model to validate (each
    # showed in its profile); what it needs is on app.state, and the answer is two integers.
    kave = services(request)
    if _is_large(request.headers):
        settings = kave.settings
        async with _turn(kave.large_bodies, settings.large_body_wait_seconds):
            # Once it has its turn, the body must arrive in time: a sender trickling it in
            # (unsigned, it cannot be refused before its end) holds a turn only that long.
            deadline = asyncio.get_running_loop().time() + settings.large_body_read_seconds
            return await _receive(request, kave, deadline)
    return await _receive(request, kave, None)


async def _receive(request: Request, kave: Services, deadline: float | None) -> Response:
    settings = kave.settings
    form, size = await _read_params(request, deadline)
    signature = request.headers.get("x-mandrill-signature")
    url, keys = settings.mailchimp_webhook_url, settings.webhook_keys
    if isinstance(form, SpooledForm):
        authentic, params = await verify_spooled(form, signature=signature, url=url, keys=keys)
    else:
        params = form
        authentic = verify_mandrill_signature(
            signature=signature, url=url, params=params, keys=keys
        )
    del form
    if not authentic:
        logger.info("webhook.mandrill.setup_check")
        return ack_response(0, 0)

    raw_events = await offload_if_large(size, decode_events, params)
    del params  # a large batch's decoded form is not needed beside its events
    events = await offload_if_large(size, classify_batch, raw_events)
    received = len(raw_events)
    del raw_events
    result = await kave.intake.accept(events, received=received)
    # Carried by the request's single access-log line rather than a line of its own.
    structlog.contextvars.bind_contextvars(
        events=received, accepted=len(result.accepted_ids), duplicates=result.duplicates
    )
    return ack_response(len(result.accepted_ids), result.duplicates)


class ShortcutUnsafe(RuntimeError):
    """The edge shortcut would skip something the declared route has gained."""


def _declared_route(app: FastAPI, path: str) -> tuple[APIRoute, list[Any]]:
    """The webhook's POST route as the app serves it, and the dependencies its include adds."""
    for candidate in app.router.routes:
        if isinstance(candidate, APIRoute):
            if candidate.path == path and "POST" in (candidate.methods or ()):
                return candidate, []
            continue
        # FastAPI 0.165 includes routers lazily: the route is the router's, the prefix and any
        # dependencies given to include_router are the include's.
        context = getattr(candidate, "include_context", None)
        included = getattr(candidate, "original_router", None)
        if context is None or not isinstance(included, APIRouter):
            continue
        for route in included.routes:
            if (
                isinstance(route, APIRoute)
                and f"{context.prefix}{route.path}" == path
                and "POST" in (route.methods or ())
            ):
                return route, list(context.dependencies)
    raise ShortcutUnsafe(f"no POST route at {path} to serve through the edge shortcut")


def mandrill_shortcut(app: FastAPI, prefix: str) -> tuple[tuple[str, str], Endpoint]:
    """The edge serves this route past FastAPI's routing (+18% acks/s). Build the shortcut from
    the route as declared, and refuse to start if the route has gained what the shortcut would
    skip: a dependency (its own, its router's, its include's or the app's), a route class of its
    own, a path parameter, another endpoint."""
    path = f"{prefix}{router.prefix}"
    route, include_dependencies = _declared_route(app, path)
    problems = []
    if route.endpoint is not receive_mandrill_batch:
        problems.append(f"its endpoint is {route.endpoint.__name__}, not receive_mandrill_batch")
    if route.dependant.dependencies or route.dependencies or include_dependencies:
        problems.append("it has dependencies, which the shortcut would not solve")
    if app.router.dependencies:
        problems.append("the app has dependencies, which the shortcut would not solve")
    if type(route) is not APIRoute:
        problems.append(f"it uses the route class {type(route).__name__}")
    if route.param_convertors:
        problems.append("it has path parameters")
    if problems:
        raise ShortcutUnsafe(f"the webhook shortcut at {path} is unsafe: " + "; ".join(problems))
    return ("POST", path), route.endpoint
