"""Queries on the users of the management API."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from app.db.repository import Repository
from app.users.models import User


class UserRepository(Repository[User]):
    model = User

    async def get_by_email(self, email: str) -> User | None:
        """`email` must already be normalised (lower-cased), as stored."""
        return await self.session.scalar(select(User).where(User.email == email))

    async def list_all(self) -> Sequence[User]:
        return await self.list(select(User).order_by(User.created_at, User.id))

    async def any_exist(self) -> bool:
        return (await self.session.scalar(select(User.id).limit(1))) is not None
