"""Destinations, their notifications and attempts (scope destinations:admin)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.core.params import API_PREFIX, error_responses
from app.core.security import Scope
from app.db.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Position, build_page, decode_cursor
from app.deps import SessionDep, SettingsDep
from app.destinations import service
from app.destinations.models import NotificationStatus
from app.destinations.repository import (
    AttemptRepository,
    DestinationRepository,
    NotificationRepository,
)
from app.destinations.schemas import (
    AttemptOut,
    DestinationCreate,
    DestinationCreated,
    DestinationList,
    DestinationOut,
    DestinationUpdate,
    NotificationDetail,
    NotificationOut,
    NotificationPage,
    RecoverRequest,
    RecoverResult,
    SecretRotated,
)
from app.users.deps import require_scopes

router = APIRouter(tags=["destinations"], dependencies=[require_scopes(Scope.DESTINATIONS_ADMIN)])

REFUSED = "`destination_refused`: not https, or resolves to a non-public address (production)"
ONE = error_responses(401, 403, 404, 422, 500)
BODY = "The body is not UTF-8 JSON"
WRITE = error_responses(401, 403, 404, 500, extra={400: BODY, 422: f"Invalid body, or {REFUSED}"})


@router.post(
    "/destinations",
    response_model=DestinationCreated,
    status_code=201,
    responses=error_responses(401, 403, 500, extra={400: BODY, 422: f"Invalid body, or {REFUSED}"}),
    summary="Add a destination; the answer holds its signing secret, shown this once",
)
async def create_destination(
    body: DestinationCreate, session: SessionDep, settings: SettingsDep, response: Response
) -> DestinationCreated:
    destination = await service.create_destination(session, settings, body)
    response.headers["Location"] = f"{API_PREFIX}/destinations/{destination.id}"
    return DestinationCreated.with_secret(destination)


@router.get(
    "/destinations",
    response_model=DestinationList,
    responses=error_responses(401, 403, 500),
    summary="List destinations",
)
async def list_destinations(session: SessionDep) -> DestinationList:
    found = await DestinationRepository(session).list_all()
    return DestinationList(items=[DestinationOut.of(d) for d in found])


@router.get(
    "/destinations/{destination_id}",
    response_model=DestinationOut,
    responses=ONE,
    summary="One destination",
)
async def get_destination(destination_id: uuid.UUID, session: SessionDep) -> DestinationOut:
    return DestinationOut.of(await service.get_destination(session, destination_id))


@router.patch(
    "/destinations/{destination_id}",
    response_model=DestinationOut,
    responses=WRITE,
    summary="Change a destination (re-enabling one clears its failure state)",
)
async def update_destination(
    destination_id: uuid.UUID, body: DestinationUpdate, session: SessionDep, settings: SettingsDep
) -> DestinationOut:
    return DestinationOut.of(
        await service.update_destination(session, settings, destination_id, body)
    )


@router.delete(
    "/destinations/{destination_id}",
    status_code=204,
    response_class=Response,
    responses=ONE,
    summary="Delete a destination and its notifications",
)
async def delete_destination(destination_id: uuid.UUID, session: SessionDep) -> Response:
    await service.delete_destination(session, destination_id)
    return Response(status_code=204)


@router.post(
    "/destinations/{destination_id}/rotate-secret",
    response_model=SecretRotated,
    responses=ONE,
    summary="New signing secret; the old one signs beside it for 24 h",
)
async def rotate_secret(
    destination_id: uuid.UUID, session: SessionDep, settings: SettingsDep
) -> SecretRotated:
    destination = await service.rotate_secret(session, settings, destination_id)
    return SecretRotated(
        secret=destination.secret,
        previous_secret_expires_at=destination.previous_secret_expires_at,
    )


@router.post(
    "/destinations/{destination_id}/test",
    response_model=AttemptOut,
    responses=ONE,
    summary="Send a signed `ping` now and return the attempt",
)
async def test_destination(
    destination_id: uuid.UUID, session: SessionDep, settings: SettingsDep
) -> AttemptOut:
    attempt = await service.send_test(session, settings, destination_id)
    return AttemptOut.model_validate(attempt)


@router.get(
    "/destinations/{destination_id}/notifications",
    response_model=NotificationPage,
    responses=error_responses(401, 403, 404, 422, 500, extra={400: "`invalid_cursor`"}),
    summary="The destination's notifications, newest first",
)
async def list_notifications(
    destination_id: uuid.UUID,
    session: SessionDep,
    status: NotificationStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> NotificationPage:
    await service.get_destination(session, destination_id)
    after = decode_cursor("notifications", cursor) if cursor else None
    rows = await NotificationRepository(session).page(
        destination_id,
        status=status.value if status else None,
        after=(after.received_at, after.id) if after else None,
        limit=limit + 1,
    )
    page = build_page(
        "notifications", rows, limit=limit, position_of=lambda n: Position(n.created_at, n.id)
    )
    return NotificationPage(
        items=[NotificationOut.of(n) for n in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "/destinations/{destination_id}/recover",
    response_model=RecoverResult,
    status_code=202,
    responses=WRITE,
    summary="Send again every delivered or failed notification of a time window",
)
async def recover(
    destination_id: uuid.UUID, body: RecoverRequest, session: SessionDep
) -> RecoverResult:
    count = await service.recover(session, destination_id, since=body.since, until=body.until)
    return RecoverResult(requeued=count)


@router.get(
    "/notifications/{notification_id}",
    response_model=NotificationDetail,
    responses=ONE,
    summary="One notification with every attempt",
)
async def get_notification(notification_id: uuid.UUID, session: SessionDep) -> NotificationDetail:
    notification = await service.get_notification(session, notification_id)
    attempts = await AttemptRepository(session).for_notification(notification_id)
    return NotificationDetail.with_attempts(notification, list(attempts))


@router.post(
    "/notifications/{notification_id}/replay",
    response_model=NotificationOut,
    status_code=202,
    responses=error_responses(401, 403, 404, 422, 500, extra={409: "`notification_in_progress`"}),
    summary="Send a delivered or failed notification again (same webhook-id)",
)
async def replay_notification(notification_id: uuid.UUID, session: SessionDep) -> NotificationOut:
    return NotificationOut.of(await service.replay_notification(session, notification_id))
