"""Destination changes, the test ping, replay and recovery. Each commits what it did."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.db.base import utcnow
from app.destinations.delivery import http_session, post_signed
from app.destinations.errors import (
    DestinationNotFound,
    NotificationInProgress,
    NotificationNotFound,
)
from app.destinations.models import (
    Destination,
    Notification,
    NotificationAttempt,
    NotificationStatus,
    NotificationType,
)
from app.destinations.outbox import NOTIFICATIONS_DUE
from app.destinations.repository import (
    AttemptRepository,
    ClaimedNotification,
    DestinationRepository,
    NotificationRepository,
)
from app.destinations.schemas import DestinationCreate, DestinationUpdate
from app.destinations.sending import Sent, active_secrets, build_bodies, record
from app.destinations.signing import new_secret
from app.destinations.ssrf import check_destination_url

logger = structlog.get_logger("app.destinations")


async def get_destination(session: AsyncSession, destination_id: uuid.UUID) -> Destination:
    destination = await DestinationRepository(session).get(destination_id)
    if destination is None:
        raise DestinationNotFound()
    return destination


async def create_destination(
    session: AsyncSession, settings: Settings, body: DestinationCreate
) -> Destination:
    await check_destination_url(body.url, allow_private=settings.private_networks_allowed)
    now = utcnow()
    destination = DestinationRepository(session).add(
        Destination(
            id=uuid.uuid4(),
            url=body.url,
            recipients=body.recipients,
            description=body.description,
            enabled=body.enabled,
            secret=new_secret(),
            consecutive_failures=0,
            created_at=now,
            updated_at=now,
        )
    )
    await session.commit()
    logger.info("destination.created", destination_id=str(destination.id))
    return destination


async def update_destination(
    session: AsyncSession, settings: Settings, destination_id: uuid.UUID, body: DestinationUpdate
) -> Destination:
    destination = await get_destination(session, destination_id)
    if body.url is not None:
        await check_destination_url(body.url, allow_private=settings.private_networks_allowed)
        destination.url = body.url
    if body.recipients is not None:
        destination.recipients = body.recipients
    if body.description is not None:
        destination.description = body.description
    if body.enabled is not None:
        destination.enabled = body.enabled
        if body.enabled:
            destination.disabled_reason = None
            destination.consecutive_failures = 0
            destination.failing_since = None
    destination.updated_at = utcnow()
    await session.commit()
    NOTIFICATIONS_DUE.ring()  # re-enabled: what waited is due
    return destination


async def delete_destination(session: AsyncSession, destination_id: uuid.UUID) -> None:
    await get_destination(session, destination_id)
    await DestinationRepository(session).delete_by_id(destination_id)
    await session.commit()
    logger.info("destination.deleted", destination_id=str(destination_id))


async def rotate_secret(
    session: AsyncSession, settings: Settings, destination_id: uuid.UUID
) -> Destination:
    """A new secret; the old one keeps signing beside it for the overlap, so consumers can
    switch without dropping a notification."""
    destination = await get_destination(session, destination_id)
    now = utcnow()
    overlap = settings.destination_secret_overlap_seconds
    destination.previous_secret = destination.secret if overlap else None
    destination.previous_secret_expires_at = now + timedelta(seconds=overlap) if overlap else None
    destination.secret = new_secret()
    destination.updated_at = now
    await session.commit()
    logger.info("destination.secret_rotated", destination_id=str(destination_id))
    return destination


async def send_test(
    session: AsyncSession, settings: Settings, destination_id: uuid.UUID
) -> NotificationAttempt:
    """Send a `ping` now, in the request, and return its attempt (recorded like any other)."""
    destination = await get_destination(session, destination_id)
    now = utcnow()
    owner = f"test:{uuid.uuid4().hex[:12]}"
    notification = Notification(
        id=uuid.uuid4(),
        destination_id=destination.id,
        type=NotificationType.PING.value,
        status=NotificationStatus.SENDING.value,
        attempts=1,
        lease_owner=owner,
        lease_expires_at=now + timedelta(seconds=settings.notification_timeout_seconds + 30),
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(notification)
    await session.commit()
    claimed = ClaimedNotification(notification.id, None, notification.type, None, 1)
    bodies = await build_bodies(session, settings, destination, [claimed], now=now)
    async with http_session(
        timeout_seconds=settings.notification_timeout_seconds,
        allow_private=settings.private_networks_allowed,
        limit=1,
    ) as http:
        result = await post_signed(
            http,
            url=destination.url,
            secrets=active_secrets(destination, now),
            msg_id=claimed.webhook_id,
            now=now,
            body=bodies[claimed.id] or "",
            allow_private=settings.private_networks_allowed,
        )
    await record(session, settings, destination, [Sent(claimed, result, retry=False)], owner=owner)
    await session.commit()
    attempts = await AttemptRepository(session).for_notification(notification.id)
    return attempts[-1]


async def get_notification(session: AsyncSession, notification_id: uuid.UUID) -> Notification:
    notification = await NotificationRepository(session).get(notification_id)
    if notification is None:
        raise NotificationNotFound()
    return notification


async def replay_notification(session: AsyncSession, notification_id: uuid.UUID) -> Notification:
    await get_notification(session, notification_id)
    if not await NotificationRepository(session).requeue(notification_id):
        await session.rollback()
        raise NotificationInProgress()
    await session.commit()
    NOTIFICATIONS_DUE.ring()
    session.expunge_all()
    return await get_notification(session, notification_id)


async def recover(
    session: AsyncSession, destination_id: uuid.UUID, *, since: datetime, until: datetime | None
) -> int:
    await get_destination(session, destination_id)
    count = await NotificationRepository(session).recover(destination_id, since=since, until=until)
    await session.commit()
    NOTIFICATIONS_DUE.ring()
    logger.info("destination.recover", destination_id=str(destination_id), requeued=count)
    return count
