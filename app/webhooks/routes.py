"""The Mandrill inbound endpoint: verify -> store -> commit -> 200, then process in background."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Request, Response
from starlette.datastructures import UploadFile

from app.core.config import Settings
from app.core.errors import ErrorEnvelope
from app.webhooks.ingest import offload_if_large, store_batch
from app.webhooks.mandrill import (
    FormParams,
    classify_batch,
    decode_events,
    parse_form,
    verify_mandrill_signature,
)
from app.webhooks.schemas import WebhookAck, ack_response
from app.webhooks.streaming import (
    STREAM_THRESHOLD_BYTES,
    SpooledForm,
    read_streamed,
    verify_spooled,
)

router = APIRouter(prefix="/webhooks/mailchimp", tags=["webhooks"])
logger = structlog.get_logger("app.webhooks")

_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorEnvelope, "description": "Authentic, but not a JSON array of events"},
    401: {"model": ErrorEnvelope, "description": "Missing or wrong X-Mandrill-Signature"},
    413: {"model": ErrorEnvelope, "description": "Body over MAX_BODY_BYTES"},
    503: {"model": ErrorEnvelope, "description": "Database unreachable; Mailchimp will retry"},
}


@router.head("", response_class=Response, summary="Mailchimp's URL check (HEAD)")
async def url_check_head() -> Response:
    return Response(status_code=200)


@router.get("", response_class=Response, summary="Mailchimp's URL check (GET)")
async def url_check_get() -> Response:
    return Response(status_code=200)


async def _read_params(request: Request) -> tuple[FormParams | SpooledForm, int]:
    headers = request.headers
    if headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_fields=100)
        params = [
            (k.encode(), v.encode("utf-8", "surrogateescape"))
            for k, v in form.multi_items()
            if not isinstance(v, UploadFile)
        ]
        return params, sum(len(v) for _, v in params)
    declared = headers.get("content-length")
    if declared is None or not declared.isdigit() or int(declared) > STREAM_THRESHOLD_BYTES:
        # Large or of unknown size: decoded while it streams in, never whole in memory.
        return await read_streamed(request.stream())
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
        "Every new event is committed before the 200; repeats are counted as duplicates."
    ),
)
async def receive_mandrill_batch(request: Request) -> Response:
    # The hottest route: no dependencies to solve and no response model to validate (each
    # showed in its profile); what it needs is on app.state, and the answer is two integers.
    state = request.app.state
    settings: Settings = state.settings
    form, size = await _read_params(request)
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
    result = await store_batch(state.committer, events, received=received)
    state.worker.submit(result.accepted_ids)
    # Carried by the request's single access-log line rather than a line of its own.
    structlog.contextvars.bind_contextvars(
        events=received, accepted=len(result.accepted_ids), duplicates=result.duplicates
    )
    return ack_response(len(result.accepted_ids), result.duplicates)
