"""Sending claimed notifications and recording what happened, shared by the dispatcher and
the `test` ping: bodies from the stored email, one attempt each, outcomes in one transaction."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.db.base import utcnow
from app.destinations import metrics
from app.destinations.delivery import AttemptResult, Outcome
from app.destinations.models import (
    Destination,
    NotificationAttempt,
    NotificationStatus,
    NotificationType,
)
from app.destinations.payload import email_data, envelope
from app.destinations.repository import ClaimedNotification, NotificationRepository
from app.emails.feed import FeedRepository
from app.emails.models import Email
from app.emails.threads import ThreadRepository

logger = structlog.get_logger("app.destinations")
S = NotificationStatus


def active_secrets(destination: Destination, now: datetime) -> list[str]:
    """The current secret, and the one before a rotation while its overlap lasts."""
    found = [destination.secret]
    expires = destination.previous_secret_expires_at
    if destination.previous_secret and expires is not None and expires > now:
        found.append(destination.previous_secret)
    return found


async def build_bodies(
    session: AsyncSession,
    settings: Settings,
    destination: Destination,
    claimed: Sequence[ClaimedNotification],
    *,
    now: datetime,
) -> dict[uuid.UUID, str | None]:
    """Each notification's JSON body; None when its email is gone (deleted since)."""
    email_ids = [c.email_id for c in claimed if c.email_id is not None]
    emails: dict[uuid.UUID, Email] = {}
    if email_ids:
        rows = await session.scalars(select(Email).where(Email.id.in_(email_ids)))
        emails = {e.id: e for e in rows.all()}
    attachments = await FeedRepository(session).attachments_of(list(emails))
    threads = await ThreadRepository(session).threads_of(e.thread_key for e in emails.values())
    bodies: dict[uuid.UUID, str | None] = {}
    for c in claimed:
        if c.type == NotificationType.PING.value:
            data = {"destination_id": str(destination.id), "message": "Kave test notification"}
            bodies[c.id] = envelope("ping", data, now=now)
            continue
        email = emails.get(c.email_id) if c.email_id is not None else None
        if email is None:
            bodies[c.id] = None
            continue
        data = email_data(
            settings,
            email,
            attachments[email.id],
            tag=c.tag,
            thread_id=threads.get(email.thread_key or ""),
        )
        bodies[c.id] = envelope(c.type, data, now=now)
    return bodies


def retry_delay(settings: Settings, attempts: int) -> float | None:
    """Seconds until the next attempt after `attempts` failed ones; None when used up."""
    schedule = settings.notification_retry_schedule
    if attempts > len(schedule):
        return None
    base = schedule[attempts - 1]
    return base * random.uniform(0.9, 1.1)  # noqa: S311 (jitter, not crypto)


@dataclass(frozen=True, slots=True)
class Sent:
    claimed: ClaimedNotification
    result: AttemptResult
    retry: bool = True  # a ping is sent once: no schedule


def _values(settings: Settings, sent: Sent, now: datetime) -> dict[str, Any]:
    """The notification's new state. Every outcome sets the same columns, so the batch's
    updates go out as one executemany."""
    result = sent.result
    values: dict[str, Any] = {
        "last_status_code": result.status_code,
        "last_error": result.error,
        "delivered_at": None,
        "next_attempt_at": now,
    }
    if result.outcome is Outcome.DELIVERED:
        return {**values, "status": S.DELIVERED.value, "delivered_at": now, "last_error": None}
    delay = retry_delay(settings, sent.claimed.attempts) if sent.retry else None
    if result.outcome in (Outcome.GONE, Outcome.ABANDONED) or delay is None:
        return {**values, "status": S.FAILED.value}
    return {**values, "status": S.PENDING.value, "next_attempt_at": now + timedelta(seconds=delay)}


async def record(
    session: AsyncSession,
    settings: Settings,
    destination: Destination,
    sent: Sequence[Sent],
    *,
    owner: str,
) -> None:
    """Attempts, outcomes and the destination's health, in the caller's transaction."""
    now = utcnow()
    label = str(destination.id)
    session.add_all(
        NotificationAttempt(
            id=uuid.uuid4(),
            notification_id=item.claimed.id,
            destination_id=destination.id,
            at=now - timedelta(milliseconds=item.result.latency_ms),
            status_code=item.result.status_code,
            latency_ms=item.result.latency_ms,
            error=item.result.error,
            response_body=item.result.response_body,
        )
        for item in sent
    )
    # Only those whose lease we still hold (locked until commit on PostgreSQL): another
    # dispatcher took over the rest, and its outcome is the one that counts.
    held = await NotificationRepository(session).still_held(
        [item.claimed.id for item in sent], owner=owner
    )
    changes = []
    for item in sent:
        if item.claimed.id not in held:
            continue
        values = _values(settings, item, now)
        changes.append({"id": item.claimed.id, **values})
        metrics.ATTEMPTS.labels(destination=label, outcome=item.result.outcome.value).inc()
        metrics.LATENCY.labels(destination=label).observe(item.result.latency_ms / 1000)
        if values["status"] == S.DELIVERED.value:
            metrics.SENT.labels(destination=label).inc()
        elif values["status"] == S.FAILED.value:
            metrics.FAILED.labels(destination=label).inc()
    # One executemany for the batch, not one statement per notification.
    await NotificationRepository(session).finish_many(changes, now=now)
    _health(settings, destination, sent, now)


def _health(
    settings: Settings, destination: Destination, sent: Sequence[Sent], now: datetime
) -> None:
    """Consecutive failures mark the destination failing; a success clears it; 410 disables."""
    label = str(destination.id)
    for item in sent:
        outcome = item.result.outcome
        if outcome is Outcome.ABANDONED:
            continue
        if outcome is Outcome.DELIVERED:
            if destination.failing_since is not None:
                logger.info("destination.recovered", destination_id=label)
            destination.consecutive_failures = 0
            destination.failing_since = None
            continue
        destination.consecutive_failures += 1
        if outcome is Outcome.GONE and destination.enabled:
            destination.enabled = False
            destination.disabled_reason = "the destination answered 410 Gone"
            logger.warning("destination.disabled", destination_id=label, status_code=410)
        threshold = settings.notification_failing_threshold
        if destination.failing_since is None and destination.consecutive_failures >= threshold:
            destination.failing_since = now
            logger.warning(
                "destination.failing",
                destination_id=label,
                consecutive_failures=destination.consecutive_failures,
            )
    destination.updated_at = now
    metrics.FAILING.labels(destination=label).set(1 if destination.failing_since else 0)


def email_gone() -> AttemptResult:
    return AttemptResult(Outcome.ABANDONED, None, 0, "not sent: the email was deleted", None)
