"""Tokens for the management API: OAuth2 password flow, so the docs page can authorise too."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from app.core.params import error_responses
from app.core.security import create_access_token
from app.deps import SessionDep, SettingsDep
from app.users.deps import CurrentPrincipal
from app.users.errors import InvalidCredentials
from app.users.schemas import CurrentUserOut, TokenOut, UserOut
from app.users.service import authenticate
from app.users.throttle import TokenThrottle

router = APIRouter(prefix="/auth", tags=["auth"])
logger = structlog.get_logger("app.users.auth")


@router.post(
    "/token",
    response_model=TokenOut,
    responses=error_responses(401, 422, 429, 500),
    summary="Exchange email and password for a bearer token",
    description=(
        "OAuth2 password flow: form fields `username` (the user's email) and `password`, and "
        "optionally `scope` (space-separated) to ask for fewer scopes than the user holds. "
        "Wrong credentials and disabled users get the same 401. Limited to TOKEN_RATE_LIMIT "
        "attempts per client address; past TOKEN_RATE_LIMIT failures for a username, an "
        "address gets only its first attempt at it checked (429 after)."
    ),
)
async def issue_token(
    request: Request,
    response: Response,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
) -> TokenOut:
    throttle = TokenThrottle.of(request, username=form.username, rate=settings.token_rate_limit)
    await throttle.admit()
    user = await authenticate(session, email=form.username, password=form.password)
    await throttle.record(success=user is not None)
    if user is None:
        raise InvalidCredentials()
    # Asking for a scope the user does not hold is not an error: the answer's `scope` says
    # what was granted, as RFC 6749 section 3.3 allows.
    scopes = [s for s in user.scopes if not form.scopes or s in form.scopes]
    issued = create_access_token(
        user_id=user.id,
        scopes=scopes,
        secret_key=settings.secret_key,
        expires_minutes=settings.access_token_expire_minutes,
        token_version=user.token_version,
    )
    logger.info(
        "auth.token.issued", user_id=str(user.id), email=user.email, scopes=list(issued.scopes)
    )
    # RFC 6749 section 5.1: a response carrying a token must not be cached.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return TokenOut(
        access_token=issued.access_token,
        token_type="bearer",  # noqa: S106 (the OAuth2 token type)
        expires_in=issued.expires_in,
        scope=" ".join(issued.scopes),
    )


@router.get(
    "/me",
    response_model=CurrentUserOut,
    responses=error_responses(401, 500),
    summary="The user behind the bearer token and what the token may do",
)
async def who_am_i(principal: CurrentPrincipal) -> CurrentUserOut:
    return CurrentUserOut(
        **UserOut.of(principal.user).model_dump(),
        token_scopes=[s for s in principal.user.scopes if s in principal.scopes],
        token_expires_at=principal.token_expires_at,
    )
