"""Users of the management API (scope users:admin)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from app.core.params import API_PREFIX, error_responses
from app.deps import SessionDep
from app.users import service as accounts
from app.users.deps import AdminUser
from app.users.repository import UserRepository
from app.users.schemas import UserCreate, UserList, UserOut, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])


@router.get(
    "",
    response_model=UserList,
    responses=error_responses(401, 403, 500),
    summary="List users",
)
async def list_users(_: AdminUser, session: SessionDep) -> UserList:
    users = await UserRepository(session).list_all()
    return UserList(items=[UserOut.of(u) for u in users])


@router.post(
    "",
    response_model=UserOut,
    status_code=201,
    responses=error_responses(
        401, 403, 422, 500, extra={400: "The body is not UTF-8 JSON", 409: "`user_exists`"}
    ),
    summary="Create a user",
    description="The email is stored lower-cased; the password needs at least 12 characters.",
)
async def create_user(
    body: UserCreate, _: AdminUser, session: SessionDep, response: Response
) -> UserOut:
    user = await accounts.create_user(
        session, email=body.email, password=body.password.get_secret_value(), scopes=body.scopes
    )
    response.headers["Location"] = f"{API_PREFIX}/users/{user.id}"
    return UserOut.of(user)


@router.patch(
    "/{user_id}",
    response_model=UserOut,
    responses=error_responses(
        401,
        403,
        404,
        422,
        500,
        extra={
            400: "The body is not UTF-8 JSON",
            409: "`last_administrator`: no active user with users:admin would remain",
        },
    ),
    summary="Change a user's scopes, active flag or password",
    description=(
        "Only the fields given change. Disabling a user or removing a scope takes effect on "
        "their very next request, even with an unexpired token. A new password, a change of "
        "the active flag or a newly granted scope also ends every token issued before it: "
        "the user signs in again."
    ),
)
async def update_user(
    user_id: uuid.UUID, body: UserUpdate, _: AdminUser, session: SessionDep
) -> UserOut:
    user = await accounts.update_user(
        session,
        user_id=user_id,
        scopes=body.scopes,
        is_active=body.is_active,
        password=body.password.get_secret_value() if body.password else None,
    )
    return UserOut.of(user)
