"""Which schema revision this code expects, and which one a database holds."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


@lru_cache(maxsize=1)
def expected_schema_revision() -> str | None:
    """The Alembic head this code expects (None when the migrations are not shipped)."""
    ini = Path(__file__).resolve().parents[2] / "alembic.ini"
    if not ini.exists():
        return None
    return ScriptDirectory.from_config(Config(str(ini))).get_current_head()


async def current_schema_revision(connection: AsyncConnection | AsyncSession) -> str | None:
    """The revision the database is at; raises (a DBAPIError) when it was never migrated."""
    revision = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    return str(revision) if revision is not None else None
