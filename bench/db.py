"""The bench database: PostgreSQL from BENCH_DATABASE_URL (recreated), else a temp SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
KEEP_TABLES = frozenset({"alembic_version"})


class Database:
    """Admin access for the bench (asyncpg / aiosqlite directly, no ORM)."""

    def __init__(self, url: str | None, workdir: Path) -> None:
        self.sqlite_path: Path | None = None
        if url:
            self.url = url
        else:
            self.sqlite_path = workdir / "kave.db"
            self.url = f"sqlite+aiosqlite:///{self.sqlite_path}"
        self._conn: Any = None

    @property
    def is_sqlite(self) -> bool:
        return self.sqlite_path is not None

    @property
    def kind(self) -> str:
        return "sqlite" if self.is_sqlite else "postgresql"

    def connect_kwargs(self, database: str | None = None) -> dict[str, Any]:
        u = make_url(self.url)
        return {
            "host": u.host or "127.0.0.1",
            "port": u.port or 5432,
            "user": u.username or "postgres",
            "password": u.password,
            "database": database or u.database,
        }

    async def recreate(self) -> None:
        """A fresh database migrated to head: DROP/CREATE on PostgreSQL, a new file on SQLite."""
        await self.close()
        if self.sqlite_path is not None:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(f"{self.sqlite_path}{suffix}")
        else:
            import asyncpg  # type: ignore[import-untyped]

            name = str(self.connect_kwargs()["database"])
            if not re.fullmatch(r"[A-Za-z0-9_]+", name) or "bench" not in name:
                raise SystemExit(
                    f"refusing to drop database {name!r}: the bench recreates its database, "
                    "so its name must contain 'bench' (e.g. kave_bench)"
                )
            admin = await asyncpg.connect(**self.connect_kwargs("postgres"))
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.execute(f'CREATE DATABASE "{name}"')
            finally:
                await admin.close()
        alembic = Path(sys.executable).with_name("alembic")
        command = [str(alembic)] if alembic.exists() else [sys.executable, "-m", "alembic"]
        done = subprocess.run(  # noqa: ASYNC221 (a one-off before any measurement)
            [*command, "upgrade", "head"],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": self.url},
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"alembic upgrade head failed:\n{done.stdout}{done.stderr}")

    async def _connection(self) -> Any:
        if self._conn is None:
            if self.sqlite_path is not None:
                import aiosqlite

                self._conn = await aiosqlite.connect(self.sqlite_path, timeout=60)
                await self._conn.execute("PRAGMA busy_timeout=60000")
            else:
                import asyncpg

                self._conn = await asyncpg.connect(**self.connect_kwargs())
        return self._conn

    async def _fetch(self, sql: str) -> list[tuple[Any, ...]]:
        conn = await self._connection()
        if self.is_sqlite:
            async with conn.execute(sql) as cursor:
                return [tuple(row) for row in await cursor.fetchall()]
        return [tuple(row) for row in await conn.fetch(sql)]

    async def tables(self) -> list[str]:
        if self.is_sqlite:
            sql = "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        else:
            sql = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        return sorted(row[0] for row in await self._fetch(sql) if row[0] not in KEEP_TABLES)

    async def truncate(self) -> None:
        """Empty every table but alembic_version (between runs: same table sizes each run)."""
        tables = await self.tables()
        conn = await self._connection()
        if self.is_sqlite:
            for attempt in range(5):
                try:
                    await conn.execute("PRAGMA foreign_keys=OFF")
                    for table in tables:
                        await conn.execute(f'DELETE FROM "{table}"')
                    await conn.commit()
                    await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    return
                except sqlite3.OperationalError:
                    await conn.rollback()
                    if attempt == 4:
                        raise
        else:
            import asyncpg

            names = ", ".join(f'"{t}"' for t in tables)
            for attempt in range(5):
                try:
                    await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
                    return
                except asyncpg.DeadlockDetectedError:
                    # A worker still finishing a batch locks the tables in another order.
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.5)

    async def statuses(self) -> dict[str, int]:
        rows = await self._fetch("SELECT status, count(*) FROM webhook_events GROUP BY status")
        return {str(status): int(count) for status, count in rows}

    async def version(self) -> str:
        if self.is_sqlite:
            return f"SQLite {sqlite3.sqlite_version}"
        return str((await self._fetch("SELECT version()"))[0][0])

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()
