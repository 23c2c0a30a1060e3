"""The Mailchimp Marketing (audience) webhook: token in the path -> store -> commit -> 200.

Mailchimp signs nothing here; its advice is a secret token in the URL over HTTPS. A wrong token
is a plain 404 (never 410: that answer disables the webhook at Mailchimp).
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl

import structlog
from fastapi import APIRouter, Request, Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from app.audience.events import audience_new_event, read_fields
from app.audience.forms import parse_php_form
from app.core.config import Settings
from app.core.errors import ErrorEnvelope, MalformedPayload, NotFound
from app.core.params import API_PREFIX
from app.core.responses import WebhookAck
from app.deps import IntakeDep, SettingsDep
from app.processing.ingest import offload_if_large

router = APIRouter(prefix="/webhooks/mailchimp/audience", tags=["webhooks"])
logger = structlog.get_logger("app.audience")

AUDIENCE_WEBHOOK_PATH = f"{API_PREFIX}/webhooks/mailchimp/audience"
MAX_FORM_FIELDS = 1000

_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorEnvelope, "description": "Right token, but not an audience event form"},
    404: {"model": ErrorEnvelope, "description": "Wrong token, or no token is configured"},
    413: {"model": ErrorEnvelope, "description": "Body over MAX_BODY_BYTES"},
    # FastAPI would document its own validation body; Kave answers in the envelope.
    422: {"model": ErrorEnvelope, "description": "Request validation failed"},
    503: {"model": ErrorEnvelope, "description": "Database unreachable; Mailchimp will retry"},
}

FormPairs = list[tuple[str, str]]


def token_matches(settings: Settings, token: str) -> bool:
    expected = settings.mailchimp_audience_webhook_token
    if expected is None or not expected.get_secret_value():
        return False
    return hmac.compare_digest(
        token.encode("utf-8", "surrogatepass"),
        expected.get_secret_value().encode("utf-8", "surrogatepass"),
    )


def _require_token(settings: Settings, token: str) -> None:
    if not token_matches(settings, token):
        # The same answer as a path that does not exist: the token is not confirmed either way.
        raise NotFound("There is nothing at this path.")


def decode_form(body: bytes) -> FormPairs:
    """An x-www-form-urlencoded body; bytes that are not UTF-8 become U+FFFD rather than a 400."""
    try:
        return parse_qsl(
            body.decode("latin-1"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="replace",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except ValueError as exc:
        raise MalformedPayload(f"The form has more than {MAX_FORM_FIELDS} fields.") from exc


async def _read_pairs(request: Request) -> tuple[FormPairs, int]:
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        try:
            form = await request.form(max_fields=MAX_FORM_FIELDS, max_files=0)
        except HTTPException as exc:  # Starlette's answer to a multipart it cannot parse
            raise MalformedPayload("The multipart form could not be read.") from exc
        pairs = [(k, v) for k, v in form.multi_items() if not isinstance(v, UploadFile)]
        return pairs, sum(len(k) + len(v) for k, v in pairs)
    body = await request.body()
    return await offload_if_large(len(body), decode_form, body), len(body)


@router.get(
    "/{token}",
    response_class=Response,
    responses={404: _ERRORS[404], 422: _ERRORS[422]},
    summary="Mailchimp's validator check (GET)",
    description="Mailchimp sends a GET when the webhook is added; 200 only for the right token.",
)
async def audience_url_check(token: str, settings: SettingsDep) -> Response:
    _require_token(settings, token)
    return Response(status_code=200)


@router.head(
    "/{token}",
    response_class=Response,
    responses={404: _ERRORS[404], 422: _ERRORS[422]},
    summary="Mailchimp's validator check (HEAD)",
)
async def audience_url_check_head(token: str, settings: SettingsDep) -> Response:
    _require_token(settings, token)
    return Response(status_code=200)


@router.post(
    "/{token}",
    response_model=WebhookAck,
    responses=_ERRORS,
    summary="Receive a Mailchimp audience event",
    description=(
        "Form-encoded with PHP-style keys (`type`, `fired_at`, `data[...]`). The event is "
        "committed before the 200; a redelivery counts as a duplicate. An empty POST is "
        "answered 200 and stores nothing."
    ),
)
async def receive_audience_event(
    token: str, request: Request, intake: IntakeDep, settings: SettingsDep
) -> WebhookAck:
    _require_token(settings, token)
    pairs, size = await _read_pairs(request)
    if not pairs:
        logger.info("webhook.audience.empty")
        return WebhookAck(accepted=0, duplicates=0)
    form = await offload_if_large(size, parse_php_form, pairs)
    fields = read_fields(form)
    if fields is None:
        raise MalformedPayload("The form field 'type' is missing or empty.")
    result = await intake.accept([audience_new_event(form, fields)], received=1)
    # Carried by the request's single access-log line rather than a line of its own.
    structlog.contextvars.bind_contextvars(
        audience_type=fields.type[:64],
        accepted=len(result.accepted_ids),
        duplicates=result.duplicates,
    )
    return WebhookAck(accepted=len(result.accepted_ids), duplicates=result.duplicates)
