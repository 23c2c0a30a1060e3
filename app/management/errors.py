"""Errors of the management API, on top of the shared tree in `app.core.errors`."""

from __future__ import annotations

from app.core.errors import BadRequest, Conflict, NotFound


class InvalidCursor(BadRequest):
    code = "invalid_cursor"
    message = "The pagination cursor is not valid; start again without one."


class EventInProgress(Conflict):
    code = "event_in_progress"
    message = "The event is queued or being processed; it cannot be replayed now."


class EventNotReplayable(Conflict):
    code = "event_not_replayable"
    message = "Only failed or processed events can be replayed."


class PayloadPurged(Conflict):
    code = "payload_purged"
    message = "The event's payload was purged after the retention period; it cannot be replayed."


class RawMessageNotAvailable(NotFound):
    code = "raw_message_not_available"
    message = "The email was built from Mandrill's parsed fields; no raw message was stored."


class UserExists(Conflict):
    code = "user_exists"
    message = "A user with that email already exists."


class LastAdministrator(Conflict):
    code = "last_administrator"
    message = "The change would leave no active user with the users:admin scope."
