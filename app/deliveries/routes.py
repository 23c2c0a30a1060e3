"""What happened to a sent message: its Mandrill message events and sync events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.core.params import QueryText, error_responses
from app.core.security import Scope
from app.deliveries.repository import DeliveryRepository
from app.deliveries.schemas import DeliveryList, DeliveryOut
from app.deps import SessionDep
from app.users.deps import require_scopes

# Listed with the events in the API docs, as before deliveries had a package of their own.
router = APIRouter(tags=["events"])

READ = [require_scopes(Scope.EVENTS_READ)]
MAX_DELIVERIES = 1000


@router.get(
    "/deliveries",
    response_model=DeliveryList,
    dependencies=READ,
    responses=error_responses(401, 403, 422, 500),
    summary="What happened to a sent message: its Mandrill message and sync events",
    description=(
        "The message events (send, open, click, bounce, ...) stored for the Mandrill message "
        "`_id`, and the sync (deny-list) events of its recipients, in the order they happened. "
        f"At most {MAX_DELIVERIES}."
    ),
)
async def list_deliveries(
    session: SessionDep,
    message_id: Annotated[
        QueryText, Query(min_length=1, max_length=128, description="Mandrill _id")
    ],
) -> DeliveryList:
    rows = await DeliveryRepository(session).list_for_message(message_id, limit=MAX_DELIVERIES)
    return DeliveryList(message_id=message_id, items=[DeliveryOut.of(d) for d in rows])
