"""Password hashing (argon2id through passlib) and the management API's access tokens (HS256 JWT).

Nothing else in Kave hashes a password or touches a JWT: both live here so the parameters and
the checks are reviewed in one place.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any

from jose import JWTError, jwt
from passlib.context import CryptContext
from pydantic import SecretStr

from app.core.errors import NotAuthenticated


class Scope(StrEnum):
    EMAILS_READ = "emails:read"
    EMAILS_DELETE = "emails:delete"
    EVENTS_READ = "events:read"
    EVENTS_REPLAY = "events:replay"
    USERS_ADMIN = "users:admin"
    DESTINATIONS_ADMIN = "destinations:admin"


SCOPES: dict[str, str] = {
    Scope.EMAILS_READ.value: "List and read emails, their raw source and attachments",
    Scope.EMAILS_DELETE.value: "Delete emails and their stored blobs",
    Scope.EVENTS_READ.value: "List webhook events, deliveries and statistics",
    Scope.EVENTS_REPLAY.value: "Put failed or processed webhook events back in the queue",
    Scope.USERS_ADMIN.value: "Manage the users of the management API and their API keys",
    Scope.DESTINATIONS_ADMIN.value: "Manage destinations, their notifications and secrets",
}
ALL_SCOPES: tuple[str, ...] = tuple(scope.value for scope in Scope)

JWT_ALGORITHM = "HS256"
PASSWORD_MIN_LENGTH = 12

# OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane): passlib's default (64 MiB, 3 passes,
# 4 lanes) costs a third of a second per login on a small machine and 64 MiB per concurrent
# attempt. `deprecated="auto"` lets `password_needs_rehash` flag hashes made with other settings.
_passwords = CryptContext(
    schemes=["argon2"],
    deprecated="auto",
    argon2__type="ID",
    argon2__memory_cost=19_456,
    argon2__time_cost=2,
    argon2__parallelism=1,
)


CLOCK_LEEWAY_SECONDS = 60


def hash_password(password: str) -> str:
    return _passwords.hash(password)


@cache
def _dummy_hash() -> str:
    # Same parameters as a real hash, so checking an unknown user costs what checking a real one
    # does and response times do not reveal which addresses have accounts.
    return _passwords.hash(uuid.uuid4().hex)


def verify_password(password: str, hashed_password: str | None) -> bool:
    """Check `password` against `hashed_password`; with None, burn the same time and say no."""
    try:
        if hashed_password is None:
            _passwords.verify(password, _dummy_hash())
            return False
        return _passwords.verify(password, hashed_password)
    except ValueError:
        # A corrupt or foreign hash in the row, or a password over passlib's 4096-byte limit:
        # a refusal, not a 500.
        return False


def password_needs_rehash(hashed_password: str) -> bool:
    return _passwords.needs_update(hashed_password)


def warm_up() -> None:
    """Compute the dummy hash ahead of the first login (it takes as long as a real hash)."""
    _dummy_hash()


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: uuid.UUID
    scopes: frozenset[str]
    token_id: str
    expires_at: datetime
    token_version: int


def create_access_token(
    *,
    user_id: uuid.UUID,
    scopes: tuple[str, ...] | list[str],
    secret_key: SecretStr,
    expires_minutes: int,
    token_version: int = 0,
    now: datetime | None = None,
) -> IssuedToken:
    """A signed token; `token_version` is the user's at issue time (see `User.token_version`)."""
    issued_at = now or datetime.now(UTC)
    lifetime = timedelta(minutes=expires_minutes)
    ordered = tuple(scope for scope in ALL_SCOPES if scope in set(scopes))
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "iat": int(issued_at.timestamp()),
        "exp": int((issued_at + lifetime).timestamp()),
        "jti": uuid.uuid4().hex,
        "scope": " ".join(ordered),
        "ver": token_version,
    }
    token = jwt.encode(claims, secret_key.get_secret_value(), algorithm=JWT_ALGORITHM)
    return IssuedToken(access_token=token, expires_in=int(lifetime.total_seconds()), scopes=ordered)


def decode_access_token(token: str, *, secret_key: SecretStr) -> TokenClaims:
    """Verify signature and expiry; every defect is the same `NotAuthenticated` (401).

    The algorithm list is explicit, so a token that names another algorithm (`none`, RS256
    with our secret as a "public key") is refused before its signature is looked at.
    """
    try:
        claims = jwt.decode(
            token,
            secret_key.get_secret_value(),
            algorithms=[JWT_ALGORITHM],
            options={"require_exp": True, "require_sub": True},
        )
        user_id = uuid.UUID(str(claims["sub"]))
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise ValueError("scope is not a string")
        expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
        issued_at = claims.get("iat")
        # python-jose only checks that iat is a number; a token from the future is forged.
        if issued_at is not None and float(issued_at) > time.time() + CLOCK_LEEWAY_SECONDS:
            raise ValueError("token issued in the future")
        # Tokens from before token versions existed carry no `ver`: they count as version 0,
        # every user's version until their first password or active-flag change.
        version = claims.get("ver", 0)
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError("ver is not an integer")
    except (JWTError, ValueError, TypeError, KeyError, OverflowError) as exc:
        raise NotAuthenticated("The bearer token is invalid or has expired.") from exc
    return TokenClaims(
        user_id=user_id,
        scopes=frozenset(scope.split()),
        token_id=str(claims.get("jti", "")),
        expires_at=expires_at,
        token_version=version,
    )
