"""The generic repository: the only place that builds queries. It never commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, delete, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.db.base import Base

ModelT = TypeVar("ModelT", bound=Base)
RowT = TypeVar("RowT", bound=tuple[Any, ...])


def column_values(instance: Base) -> dict[str, Any]:
    """Every column of a model instance, as a Core insert takes them: what was set (None
    included, as a flush would write it), else the column's Python-side default."""
    state = instance.__dict__
    values: dict[str, Any] = {}
    for column in instance.__table__.columns:
        if column.key in state:
            values[column.key] = state[column.key]
            continue
        default: Any = column.default
        if column.server_default is not None or (
            default is not None and not (default.is_callable or default.is_scalar)
        ):
            # Such a column must be left out of the statement, which one dict per row cannot
            # say for some rows only: set it, or insert through the ORM.
            raise TypeError(f"{column} has a database-side default; set it before insert_all")
        if default is None:
            values[column.key] = None
        else:
            values[column.key] = default.arg(None) if default.is_callable else default.arg
    return values


async def insert_all(session: AsyncSession, instances: Sequence[Base]) -> None:
    """Insert model instances of one table with one Core statement (executemany): the ORM's
    flush costs several times the CPU for the same rows. The instances stay out of the
    session (nothing reads them back through it)."""
    if instances:
        table: Any = instances[0].__table__  # a Table: every model here maps one
        await session.execute(table.insert(), [column_values(row) for row in instances])


class Repository(Generic[ModelT]):
    model: type[ModelT]  # set by each subclass: `model = Email`

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
        model: Any = self.model  # every table here has a uuid `id`; Base does not declare it
        result = await self.session.execute(delete(model).where(model.id == id_))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def select(self) -> Select[Any]:
        return select(self.model)


def newest_first(
    stmt: Select[RowT],
    at: InstrumentedAttribute[datetime],
    id_: InstrumentedAttribute[uuid.UUID],
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Select[RowT]:
    """Keyset paging, newest first by `(at, id)`, strictly after the position `after` (the
    last row of the previous page): one row comparison the index `(at, id)` answers."""
    if after is not None:
        when, last_id = after
        stmt = stmt.where(
            tuple_(at, id_) < tuple_(literal(when, at.type), literal(last_id, id_.type))
        )
    return stmt.order_by(at.desc(), id_.desc()).limit(limit)


def oldest_first(
    stmt: Select[RowT],
    at: InstrumentedAttribute[datetime],
    id_: InstrumentedAttribute[uuid.UUID],
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Select[RowT]:
    """`newest_first` the other way round: oldest first, strictly after `after`."""
    if after is not None:
        when, last_id = after
        stmt = stmt.where(
            tuple_(at, id_) > tuple_(literal(when, at.type), literal(last_id, id_.type))
        )
    return stmt.order_by(at, id_).limit(limit)
