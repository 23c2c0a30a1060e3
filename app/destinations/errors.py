"""Errors of destinations and notifications."""

from __future__ import annotations

from app.core.errors import AppError, Conflict, NotFound


class DestinationRefused(AppError):
    status_code = 422
    code = "destination_refused"
    message = "The destination URL is not allowed."


class DestinationNotFound(NotFound):
    code = "destination_not_found"
    message = "No destination with that id."


class NotificationNotFound(NotFound):
    code = "notification_not_found"
    message = "No notification with that id."


class NotificationInProgress(Conflict):
    code = "notification_in_progress"
    message = "The notification is pending or being sent; it cannot be replayed now."
