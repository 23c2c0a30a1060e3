"""Which logged task processes which kind of event."""

from __future__ import annotations

from app.audience.tasks import process_audience_event
from app.mandrill.tasks import process_delivery, process_inbound, reject_invalid
from app.processing.models import EventKind
from app.processing.tasks import Handler

HANDLERS: dict[str, Handler] = {
    EventKind.INBOUND: process_inbound,
    EventKind.MESSAGE: process_delivery,
    EventKind.SYNC: process_delivery,
    EventKind.INVALID: reject_invalid,
    EventKind.AUDIENCE: process_audience_event,
}
