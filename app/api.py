"""Every router under /api/v1 but the Mandrill webhook's (see `app.main.create_app`)."""

from __future__ import annotations

from fastapi import APIRouter

from app.audience.routes import router as audience_events_router
from app.audience.webhook import router as audience_webhook_router
from app.emails.routes import router as emails_router
from app.events.routes import router as events_router
from app.mailchimp.routes import router as mailchimp_router
from app.users.auth import router as auth_router
from app.users.routes import router as users_router

api_router = APIRouter()
api_router.include_router(audience_webhook_router)
api_router.include_router(audience_events_router)
api_router.include_router(mailchimp_router)
api_router.include_router(auth_router)
api_router.include_router(emails_router)
api_router.include_router(events_router)
api_router.include_router(users_router)
