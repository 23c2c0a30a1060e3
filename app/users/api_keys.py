"""API keys for machines: `kave_` + 256 random bits, stored as SHA-256, usable as a bearer.

A fast hash is right here (unlike passwords): the key is random and long, so there is nothing
to guess, and verifying it must not cost argon2's time on every request.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict, NotFound, PermissionDenied
from app.db.base import utcnow
from app.db.repository import Repository
from app.users.models import ApiKey, User
from app.users.service import ordered_scopes

KEY_PREFIX = "kave_"
SHOWN_PREFIX_CHARS = 12
# Writing last_used_at on every request would make every read a write; a minute is precise
# enough to tell a key in use from a forgotten one.
LAST_USED_RESOLUTION = timedelta(minutes=1)

logger = structlog.get_logger("app.users.api_keys")


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"
    message = "No API key with that id."


class ApiKeyRevoked(Conflict):
    code = "api_key_revoked"
    message = "The API key is already revoked."


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_api_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


class ApiKeyRepository(Repository[ApiKey]):
    model = ApiKey

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        return await self.session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))

    async def list_all(self) -> Sequence[ApiKey]:
        return await self.list(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id))

    async def touch(self, key_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id)
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )


async def create_api_key(
    session: AsyncSession,
    *,
    creator: User,
    creator_scopes: frozenset[str],
    name: str,
    scopes: Sequence[str],
    expires_at: datetime | None,
) -> tuple[ApiKey, str]:
    """The key row and the key itself (shown once). Never more scopes than the creator's
    request may use."""
    wanted = ordered_scopes(scopes)
    beyond = [s for s in wanted if s not in creator_scopes]
    if beyond:
        raise PermissionDenied(
            f"An API key cannot hold scopes its creator lacks: {', '.join(beyond)}.",
            details=[{"missing_scopes": beyond}],
        )
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKeyRepository(session).add(
        ApiKey(
            id=uuid.uuid4(),
            user_id=creator.id,
            name=name,
            prefix=key[:SHOWN_PREFIX_CHARS],
            key_hash=hash_key(key),
            scopes=wanted,
            expires_at=expires_at,
            created_at=utcnow(),
        )
    )
    await session.commit()
    logger.info("api_key.created", api_key_id=str(row.id), user_id=str(creator.id), scopes=wanted)
    return row, key


async def revoke_api_key(session: AsyncSession, key_id: uuid.UUID) -> ApiKey:
    row = await ApiKeyRepository(session).get(key_id)
    if row is None:
        raise ApiKeyNotFound()
    if row.revoked_at is not None:
        raise ApiKeyRevoked()
    row.revoked_at = utcnow()
    await session.commit()
    logger.info("api_key.revoked", api_key_id=str(key_id))
    return row


async def resolve_api_key(session: AsyncSession, key: str) -> ApiKey | None:
    """The usable key row for `key` (not revoked, not expired), its last use noted; else None."""
    row = await ApiKeyRepository(session).by_hash(hash_key(key))
    now = utcnow()
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        await ApiKeyRepository(session).touch(row.id, now)
        await session.commit()
        row.last_used_at = now
    return row
