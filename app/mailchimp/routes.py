"""Management API: register, list and delete Kave's audience webhook at Mailchimp (users:admin)."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Path, Query, Response

from app.core.errors import ERROR_RESPONSES, ErrorEnvelope
from app.core.security import Scope
from app.deps import SettingsDep
from app.mailchimp.client import (
    audience_webhook_url,
    create_audience_webhook,
    delete_audience_webhook,
    list_audience_webhooks,
    mailchimp_config,
)
from app.mailchimp.schemas import (
    AudienceWebhookCreate,
    AudienceWebhookList,
    AudienceWebhookOut,
    webhook_list_out,
    webhook_out,
)
from app.users.deps import require_scopes

router = APIRouter(
    prefix="/mailchimp/audience-webhooks",
    tags=["mailchimp"],
    dependencies=[require_scopes(Scope.USERS_ADMIN)],
)
logger = structlog.get_logger("app.mailchimp")

ID_PATTERN = r"^[A-Za-z0-9_-]+$"

_ERRORS: dict[int | str, dict[str, object]] = {
    **ERROR_RESPONSES,
    400: {"model": ErrorEnvelope, "description": "Invalid public URL or id"},
    502: {"model": ErrorEnvelope, "description": "Mailchimp answered with an error"},
    503: {"model": ErrorEnvelope, "description": "Mailchimp is not configured in Kave"},
}

ListIdQuery = Annotated[str, Query(min_length=1, max_length=64, pattern=ID_PATTERN)]


@router.post(
    "",
    status_code=201,
    response_model=AudienceWebhookOut,
    responses=_ERRORS,
    summary="Register Kave's audience webhook on a Mailchimp list",
)
async def register_audience_webhook(
    body: AudienceWebhookCreate, settings: SettingsDep
) -> AudienceWebhookOut:
    config = mailchimp_config(settings)
    url = audience_webhook_url(body.url, settings.mailchimp_audience_webhook_token)
    created = await create_audience_webhook(
        config, list_id=body.list_id, url=url, events=body.events, sources=body.sources
    )
    logger.info("mailchimp.webhook_registered", list_id=body.list_id, webhook_id=created.get("id"))
    return webhook_out(created, settings.mailchimp_audience_webhook_token)


@router.get(
    "",
    response_model=AudienceWebhookList,
    responses=_ERRORS,
    summary="List a Mailchimp list's webhooks",
)
async def list_webhooks(list_id: ListIdQuery, settings: SettingsDep) -> AudienceWebhookList:
    raw = await list_audience_webhooks(mailchimp_config(settings), list_id=list_id)
    return webhook_list_out(raw, list_id=list_id, token=settings.mailchimp_audience_webhook_token)


@router.delete(
    "/{webhook_id}",
    status_code=204,
    response_class=Response,
    responses=_ERRORS,
    summary="Delete a webhook from a Mailchimp list",
)
async def delete_webhook(
    webhook_id: Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)],
    list_id: ListIdQuery,
    settings: SettingsDep,
) -> Response:
    await delete_audience_webhook(
        mailchimp_config(settings), list_id=list_id, webhook_id=webhook_id
    )
    logger.info("mailchimp.webhook_deleted", list_id=list_id, webhook_id=webhook_id)
    return Response(status_code=204)
