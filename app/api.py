"""Every router under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from app.audience.routes import router as audience_events_router
from app.audience.webhook import router as audience_webhook_router
from app.mailchimp.routes import router as mailchimp_router
from app.webhooks.routes import router as webhooks_router

api_router = APIRouter()
api_router.include_router(webhooks_router)
api_router.include_router(audience_webhook_router)
api_router.include_router(audience_events_router)
api_router.include_router(mailchimp_router)
