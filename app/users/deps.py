"""Who is calling and what they may do: bearer token -> active user -> scopes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import structlog
from fastapi import Depends, Security
from fastapi.security import OAuth2PasswordBearer, SecurityScopes

from app.core.errors import NotAuthenticated, PermissionDenied
from app.core.params import API_PREFIX
from app.core.security import SCOPES, Scope, decode_access_token
from app.deps import SessionDep, SettingsDep
from app.users.api_keys import looks_like_api_key, resolve_api_key
from app.users.models import User
from app.users.repository import UserRepository

TOKEN_URL = f"{API_PREFIX}/auth/token"  # a path, not a password

logger = structlog.get_logger("app.users.auth")

# auto_error=False: a missing token goes through our own NotAuthenticated, so the 401 is the
# usual envelope; the scheme still puts the password form on the docs page.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, scopes=SCOPES, auto_error=False)


@dataclass(frozen=True, slots=True)
class Principal:
    user: User
    scopes: frozenset[str]  # what the token may do: held by both the token and the user
    token_expires_at: datetime | None  # None: an API key without an expiry
    api_key_id: uuid.UUID | None = None


async def get_principal(
    security_scopes: SecurityScopes,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    session: SessionDep,
    settings: SettingsDep,
) -> Principal:
    if not token:
        raise NotAuthenticated()
    if looks_like_api_key(token):
        return _with_scopes(security_scopes, await _api_key_principal(session, token))
    claims = decode_access_token(token, secret_key=settings.secret_key)
    user = await UserRepository(session).get(claims.user_id)
    if user is None or not user.is_active or user.token_version != claims.token_version:
        # Deleted or disabled since the token was issued, or its password or active flag
        # changed since (which raised its token version): the token is worth nothing now.
        raise NotAuthenticated("The bearer token is invalid or has expired.")
    # The operator trail: every line logged for this request from here on (the access line,
    # a deletion, a replay, a user change) says who made it. The edge clears it at the end.
    structlog.contextvars.bind_contextvars(actor_user_id=str(user.id), actor_email=user.email)
    # A scope counts only while both the token and the user still hold it, so taking a scope
    # away from a user takes effect at once, not when their tokens expire.
    granted = claims.scopes & set(user.scopes)
    principal = Principal(user=user, scopes=frozenset(granted), token_expires_at=claims.expires_at)
    return _with_scopes(security_scopes, principal)


async def _api_key_principal(session: SessionDep, token: str) -> Principal:
    key = await resolve_api_key(session, token)
    user = await UserRepository(session).get(key.user_id) if key is not None else None
    if key is None or user is None or not user.is_active:
        # Unknown, revoked, expired, or its user is gone or disabled: one answer for all.
        raise NotAuthenticated("The API key is invalid, revoked or expired.")
    # Like a token: a scope counts while both the key and its user hold it.
    granted = frozenset(set(key.scopes) & set(user.scopes))
    return Principal(user=user, scopes=granted, token_expires_at=key.expires_at, api_key_id=key.id)


def _with_scopes(security_scopes: SecurityScopes, principal: Principal) -> Principal:
    user, granted = principal.user, principal.scopes
    missing = [scope for scope in security_scopes.scopes if scope not in granted]
    if missing:
        logger.info("auth.scope_denied", user_id=str(user.id), missing=missing)
        needed = " ".join(missing)
        raise PermissionDenied(
            f"The token does not grant the scope(s): {', '.join(missing)}.",
            details=[{"missing_scopes": missing}],
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{needed}"'},
        )
    return principal


async def get_current_user(principal: Annotated[Principal, Security(get_principal)]) -> User:
    return principal.user


def require_scopes(*scopes: Scope) -> Any:
    """`dependencies=[require_scopes(Scope.EMAILS_READ)]` on a route, or inside `Annotated`."""
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise ValueError(f"unknown scopes: {sorted(unknown)}")
    return Security(get_current_user, scopes=list(scopes))


def require_principal(*scopes: Scope) -> Any:
    """Like `require_scopes`, for a route that needs the principal (what its token may do)."""
    return Security(get_principal, scopes=list(scopes))


CurrentPrincipal = Annotated[Principal, Security(get_principal)]
CurrentUser = Annotated[User, Security(get_current_user)]
AdminUser = Annotated[User, require_scopes(Scope.USERS_ADMIN)]
