"""Users of the management API: sign-in, creation and changes. Shared by the API and the CLI.

Each function that changes something is one unit of work and commits it. Argon2 runs in a
worker thread: a hash takes tens of milliseconds and must not stall the event loop.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterable, Sequence

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.security import (
    ALL_SCOPES,
    PASSWORD_MIN_LENGTH,
    Scope,
    hash_password,
    verify_password,
)
from app.users.errors import LastAdministrator, UserExists, UserNotFound
from app.users.models import User
from app.users.repository import UserRepository

logger = structlog.get_logger("app.users.service")

MAX_EMAIL_CHARS = 320
PASSWORD_MAX_LENGTH = 1024
# Deliberately loose: the address is a login name, never mailed; strict validators refuse
# operator addresses such as admin@kave.internal or ops@localhost.
_EMAIL_SHAPE = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$")


def normalize_email(value: str) -> str:
    """Lower-cased and trimmed, as stored; raises ValueError when it is not `local@domain`."""
    email = value.strip().lower()
    if len(email) > MAX_EMAIL_CHARS or not _EMAIL_SHAPE.match(email):
        raise ValueError("an email address looks like name@example.com")
    return email


def check_password_strength(password: str) -> None:
    if len(password) < PASSWORD_MIN_LENGTH:
        raise ValueError(f"the password must be at least {PASSWORD_MIN_LENGTH} characters long")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise ValueError(f"the password must be at most {PASSWORD_MAX_LENGTH} characters long")


def ordered_scopes(scopes: Iterable[str]) -> list[str]:
    """Known scopes only, without repeats, in the canonical order; ValueError on an unknown one."""
    wanted = set(scopes)
    unknown = wanted - set(ALL_SCOPES)
    if unknown:
        raise ValueError(f"unknown scope(s): {', '.join(sorted(unknown))}")
    return [scope for scope in ALL_SCOPES if scope in wanted]


async def authenticate(session: AsyncSession, *, email: str, password: str) -> User | None:
    """The user for these credentials, or None. Unknown, wrong and disabled cost the same."""
    try:
        normalized = normalize_email(email)
    except ValueError:
        normalized = None
    user = await UserRepository(session).get_by_email(normalized) if normalized else None
    hashed = user.hashed_password if user is not None else None
    valid = await asyncio.to_thread(verify_password, password, hashed)
    if user is None or not valid or not user.is_active:
        reason = "unknown_user" if user is None else "wrong_password" if not valid else "disabled"
        # A known user's id, never the name typed for an unknown one (it may be a password
        # typed in the wrong field).
        known = {"user_id": str(user.id), "email": user.email} if user is not None else {}
        logger.info("auth.token.refused", reason=reason, **known)
        return None
    return user


async def create_user(
    session: AsyncSession, *, email: str, password: str, scopes: Sequence[str]
) -> User:
    normalized = normalize_email(email)
    check_password_strength(password)
    users = UserRepository(session)
    if await users.get_by_email(normalized) is not None:
        raise UserExists()
    hashed = await asyncio.to_thread(hash_password, password)
    user = users.add(
        User(
            id=uuid.uuid4(),
            email=normalized,
            hashed_password=hashed,
            scopes=ordered_scopes(scopes),
            is_active=True,
        )
    )
    try:
        await session.commit()
    except IntegrityError:
        # Created by someone else between our check and our insert.
        await session.rollback()
        raise UserExists() from None
    logger.info("user.created", user_id=str(user.id), email=user.email, scopes=user.scopes)
    return user


def _is_admin(user: User) -> bool:
    return user.is_active and Scope.USERS_ADMIN.value in user.scopes


async def update_user(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    scopes: Sequence[str] | None = None,
    is_active: bool | None = None,
    password: str | None = None,
    keep_an_admin: bool = True,
) -> User:
    """Apply the given changes. With `keep_an_admin`, refuse to leave no active administrator
    (the CLI can always create one, so it passes False)."""
    users = UserRepository(session)
    user = await users.get(user_id)
    if user is None:
        raise UserNotFound()
    was_admin = _is_admin(user)
    # Whether tokens issued before this change must stop working (see User.token_version).
    # A new password or a change of the active flag ends them, so neither a leaked password's
    # tokens nor a disabled user's come back. Taking a scope away needs nothing (a token's
    # scope counts only while the user still holds it), but granting one (again) would revive
    # it in older tokens that carry it.
    revoke = False
    if scopes is not None:
        wanted = ordered_scopes(scopes)
        revoke = not set(wanted) <= set(user.scopes)
        user.scopes = wanted
    if is_active is not None:
        revoke = revoke or is_active != user.is_active
        user.is_active = is_active
    if password is not None:
        check_password_strength(password)
        user.hashed_password = await asyncio.to_thread(hash_password, password)
        revoke = True
    if revoke:
        # Incremented by the database, so two changes at once cannot both write the same value.
        user.token_version = User.token_version + 1
    if keep_an_admin and was_admin and not _is_admin(user):
        others = [u for u in await users.list_all() if u.id != user.id and _is_admin(u)]
        if not others:
            await session.rollback()
            raise LastAdministrator()
    await session.commit()
    if revoke:
        await session.refresh(user, ["token_version"])
    logger.info(
        "user.updated",
        user_id=str(user.id),
        scopes_changed=scopes is not None,
        is_active=user.is_active,
        password_changed=password is not None,
        tokens_revoked=revoke,
    )
    return user


async def active_admin_exists(session: AsyncSession) -> bool:
    return any(_is_admin(user) for user in await UserRepository(session).list_all())
