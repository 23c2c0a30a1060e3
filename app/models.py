"""Every table, for Alembic and the tests: importing this registers each domain's models.

Models live with their domain (`app/emails/models.py`, ...); nothing in the app imports this.
"""

from app.audience.models import AudienceEvent
from app.deliveries.models import Delivery
from app.destinations.models import Destination, Notification, NotificationAttempt
from app.emails.models import Attachment, Email, FeedCounter, Thread, ThreadKey
from app.processing.models import WebhookEvent
from app.users.models import ApiKey, User

__all__ = [
    "ApiKey",
    "Attachment",
    "AudienceEvent",
    "Delivery",
    "Destination",
    "Email",
    "FeedCounter",
    "Notification",
    "NotificationAttempt",
    "Thread",
    "ThreadKey",
    "User",
    "WebhookEvent",
]
