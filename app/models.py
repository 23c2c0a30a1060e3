"""Every table, for Alembic and the tests: importing this registers each domain's models.

Models live with their domain (`app/emails/models.py`, ...); nothing in the app imports this.
"""

from app.audience.models import AudienceEvent
from app.deliveries.models import Delivery
from app.emails.models import Attachment, Email, Thread, ThreadKey
from app.processing.models import WebhookEvent
from app.users.models import User

__all__ = [
    "Attachment",
    "AudienceEvent",
    "Delivery",
    "Email",
    "Thread",
    "ThreadKey",
    "User",
    "WebhookEvent",
]
