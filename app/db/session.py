"""Engine and session factory. Built once in lifespan and held on `app.state`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core.config import Settings

CONNECT_TIMEOUT_SECONDS = 10
COMMAND_TIMEOUT_SECONDS = 30


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the writer; FULL sync keeps an acknowledged commit on disk.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def build_engine(settings: Settings, *, database_url: str | None = None) -> AsyncEngine:
    url = database_url or settings.database_url
    if url.startswith("sqlite"):
        # One connection per process: SQLite has a single writer anyway, and sharing one
        # connection avoids "database is locked" between our own sessions.
        engine = create_async_engine(
            url,
            pool_size=1,
            max_overflow=0,
            pool_timeout=settings.db_pool_timeout,
            connect_args={"timeout": 30},
            hide_parameters=True,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        # A database that stops answering (rather than refusing) must turn into a 503 and a
        # retry, not a request or a shutdown that hangs: bound connecting and every command.
        connect_args={
            "timeout": CONNECT_TIMEOUT_SECONDS,
            "command_timeout": COMMAND_TIMEOUT_SECONDS,
        },
        # Statement parameters hold message bodies: keep them out of exception text and logs.
        hide_parameters=True,
    )


def build_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def build_ingest_engine(engine: AsyncEngine) -> AsyncEngine:
    """The same pool in autocommit mode, for the acknowledgement path.

    The ack stores a batch with INSERT ... ON CONFLICT DO NOTHING: autocommit saves the BEGIN
    and COMMIT round trips, and each statement's commit has completed (and, with
    synchronous_commit on, reached the disk) before the 200 is sent. A batch larger than
    one statement may be stored in parts if the database fails midway; the 503 makes
    Mailchimp retry, and the parts already stored count as duplicates.
    """
    return engine.execution_options(isolation_level="AUTOCOMMIT")
