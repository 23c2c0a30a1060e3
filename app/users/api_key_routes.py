"""API keys (scope users:admin): create (the key shown once), list, revoke."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.core.params import API_PREFIX, error_responses
from app.core.security import Scope
from app.core.times import as_utc
from app.deps import SessionDep
from app.users.api_keys import ApiKeyRepository, create_api_key, revoke_api_key
from app.users.deps import Principal, require_principal
from app.users.models import ApiKey

router = APIRouter(prefix="/api-keys", tags=["api-keys"])
Admin = Annotated[Principal, require_principal(Scope.USERS_ADMIN)]


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    scopes: list[Scope] = Field(min_length=1)
    expires_at: Annotated[datetime | None, AfterValidator(lambda v: as_utc(v) if v else v)] = None


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it")
    user_id: uuid.UUID
    scopes: list[str]
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None = Field(description="To the minute")
    created_at: datetime

    @classmethod
    def of(cls, row: ApiKey) -> ApiKeyOut:
        return cls(
            id=row.id,
            name=row.name,
            prefix=row.prefix,
            user_id=row.user_id,
            scopes=list(row.scopes),
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            last_used_at=row.last_used_at,
            created_at=row.created_at,
        )


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key (`kave_...`), shown this once: use it as a bearer")


class ApiKeyList(BaseModel):
    items: list[ApiKeyOut]


@router.post(
    "",
    response_model=ApiKeyCreated,
    status_code=201,
    responses=error_responses(401, 403, 422, 500, extra={400: "The body is not UTF-8 JSON"}),
    summary="Create an API key (shown once); never more scopes than yours",
)
async def create_key(
    body: ApiKeyCreate, principal: Admin, session: SessionDep, response: Response
) -> ApiKeyCreated:
    row, key = await create_api_key(
        session,
        creator=principal.user,
        creator_scopes=principal.scopes,
        name=body.name,
        scopes=[s.value for s in body.scopes],
        expires_at=body.expires_at,
    )
    response.headers["Location"] = f"{API_PREFIX}/api-keys/{row.id}"
    response.headers["Cache-Control"] = "no-store"
    return ApiKeyCreated(**ApiKeyOut.of(row).model_dump(), key=key)


@router.get(
    "",
    response_model=ApiKeyList,
    responses=error_responses(401, 403, 500),
    summary="List API keys (without the keys)",
)
async def list_keys(_: Admin, session: SessionDep) -> ApiKeyList:
    return ApiKeyList(items=[ApiKeyOut.of(r) for r in await ApiKeyRepository(session).list_all()])


@router.delete(
    "/{key_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(401, 403, 404, 422, 500, extra={409: "`api_key_revoked`"}),
    summary="Revoke an API key: it stops working at once",
)
async def revoke_key(key_id: uuid.UUID, _: Admin, session: SessionDep) -> Response:
    await revoke_api_key(session, key_id)
    return Response(status_code=204)
