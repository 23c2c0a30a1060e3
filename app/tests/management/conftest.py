"""Users and tokens for the management API tests."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from functools import cache
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.security import ALL_SCOPES, create_access_token, hash_password
from app.db.models import User
from app.db.repositories.users import UserRepository

PASSWORD = "correct horse battery staple"

MakeUser = Callable[..., Awaitable[User]]
TokenFor = Callable[..., Awaitable[dict[str, str]]]


@cache
def password_hash() -> str:
    # One argon2 hash for the whole session: hashing costs tens of milliseconds.
    return hash_password(PASSWORD)


@pytest.fixture
def make_user(session: AsyncSession) -> MakeUser:
    async def make(
        *,
        email: str | None = None,
        scopes: Iterable[str] = ALL_SCOPES,
        is_active: bool = True,
    ) -> User:
        user = UserRepository(session).add(
            User(
                id=uuid.uuid4(),
                email=email or f"user-{uuid.uuid4().hex[:8]}@example.com",
                hashed_password=password_hash(),
                scopes=list(scopes),
                is_active=is_active,
            )
        )
        await session.commit()
        return user

    return make


def bearer(user: User, settings: Settings, **kwargs: Any) -> dict[str, str]:
    issued = create_access_token(
        user_id=user.id,
        scopes=kwargs.pop("scopes", user.scopes),
        secret_key=kwargs.pop("secret_key", settings.secret_key),
        expires_minutes=kwargs.pop("expires_minutes", settings.access_token_expire_minutes),
        token_version=kwargs.pop("token_version", user.token_version),
        **kwargs,
    )
    return {"Authorization": f"Bearer {issued.access_token}"}


@pytest.fixture
def token_for(make_user: MakeUser, settings: Settings) -> TokenFor:
    """`await token_for("emails:read")`: headers with a token for a new user with those scopes."""

    async def headers(*scopes: str) -> dict[str, str]:
        user = await make_user(scopes=scopes)
        return bearer(user, settings)

    return headers


@pytest.fixture
async def admin_headers(token_for: TokenFor) -> dict[str, str]:
    return await token_for(*ALL_SCOPES)
