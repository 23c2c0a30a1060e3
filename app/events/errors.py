"""Errors of the event inbox API."""

from __future__ import annotations

from app.core.errors import Conflict, NotFound


class EventNotFound(NotFound):
    code = "event_not_found"
    message = "No event with that id."


class EventInProgress(Conflict):
    code = "event_in_progress"
    message = "The event is queued or being processed; it cannot be replayed now."


class EventNotReplayable(Conflict):
    code = "event_not_replayable"
    message = "Only failed or processed events can be replayed."


class PayloadPurged(Conflict):
    code = "payload_purged"
    message = "The event's payload was purged after the retention period; it cannot be replayed."
