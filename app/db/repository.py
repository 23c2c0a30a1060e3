"""The generic repository: the only place that builds queries. It never commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import Base

ModelT = TypeVar("ModelT", bound=Base)


class Repository(Generic[ModelT]):
    model: ClassVar[type[Any]]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, id_: uuid.UUID) -> ModelT | None:
        instance: ModelT | None = await self.session.get(self.model, id_)
        return instance

    def add(self, instance: ModelT) -> ModelT:
        self.session.add(instance)
        return instance

    async def list(self, statement: Select[Any]) -> Sequence[ModelT]:
        return (await self.session.scalars(statement)).all()

    async def delete_by_id(self, id_: uuid.UUID) -> int:
        result = await self.session.execute(delete(self.model).where(self.model.id == id_))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def select(self) -> Select[Any]:
        return select(self.model)
