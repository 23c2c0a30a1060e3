"""How a CLI command reaches the database: settings, an engine, one session, then cleanup.

Before the work runs, one connection checks that the database answers and is at the schema
this code expects, so an operator reads one line ("cannot reach the database at ...", "not
migrated: run `make migrate`") instead of a driver's traceback. The same words are used if the
database goes away or turns out un-migrated half-way through.
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
import typer
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.config import Settings, load_settings
from app.core.errors import AppError
from app.core.logging import configure_logging
from app.core.outages import database_unavailable, outage_sqlstate
from app.db.schema import current_schema_revision, expected_schema_revision
from app.db.session import build_engine, build_session_factory
from app.storage.base import BlobStore
from app.storage.factory import build_blob_store

T = TypeVar("T")

Work = Callable[[AsyncSession, Settings], Awaitable[T]]
StoreWork = Callable[[AsyncSession, BlobStore, Settings], Awaitable[T]]

NOT_MIGRATED = "not migrated: run `make migrate` (or `alembic upgrade head`)"
# SQLSTATE 42P01 undefined_table; SQLite says it in words.
_MISSING_TABLE_SQLSTATE = "42P01"


class DatabaseProblem(Exception):
    """The database cannot serve a command; `str()` is the one line the operator reads."""


def load_cli_settings() -> Settings:
    settings = load_settings()
    # Commands report on stdout themselves; only warnings and errors go to the log (stderr).
    configure_logging(settings.model_copy(update={"log_level": "WARNING"}))
    # Whatever a command logs says who ran it (the operator trail), never a secret.
    structlog.contextvars.bind_contextvars(actor="cli", actor_os_user=_os_user())
    return settings


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry
        return "unknown"


def safe_database_url(url: str) -> str:
    """The URL as it may be shown: no password."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "(DATABASE_URL is not a database URL)"
    # `URL.set` skips None, so the password is left out by building the URL again without it.
    return URL.create(
        parsed.drivername,
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=parsed.query,
    ).render_as_string(hide_password=False)


def _missing_table(exc: BaseException) -> bool:
    if outage_sqlstate(exc) == _MISSING_TABLE_SQLSTATE:
        return True
    return "no such table" in str(getattr(exc, "orig", exc)).lower()


def describe_database_error(exc: BaseException, url: str) -> str | None:
    """One line for a database failure, or None when `exc` is not one."""
    if database_unavailable(exc):
        return f"cannot reach the database at {safe_database_url(url)}"
    if isinstance(exc, DBAPIError):
        if _missing_table(exc):
            return NOT_MIGRATED
        reason = type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__
        return f"the database at {safe_database_url(url)} refused the command ({reason})"
    return None


async def check_database(engine: AsyncEngine, url: str) -> str:
    """Connect and compare the schema revision; returns the revision, raises DatabaseProblem."""
    try:
        connection = await engine.connect()
    except Exception as exc:  # noqa: BLE001 (any failure to connect is this one answer)
        # Refused, unknown host, wrong password, missing database: all "cannot reach" to an
        # operator; the driver's class name says which without quoting its message.
        reason = outage_sqlstate(exc) or type(getattr(exc, "orig", None) or exc).__name__
        raise DatabaseProblem(
            f"cannot reach the database at {safe_database_url(url)} ({reason})"
        ) from None
    try:
        revision = await current_schema_revision(connection)
    except DBAPIError:
        raise DatabaseProblem(NOT_MIGRATED) from None
    finally:
        await connection.close()
    expected = expected_schema_revision()
    if expected is not None and revision != expected:
        raise DatabaseProblem(f"{NOT_MIGRATED}: the database is at {revision}, not {expected}")
    return revision or ""


async def _run(settings: Settings, work: Work[T]) -> T:
    try:
        engine = build_engine(settings)
    except ArgumentError as exc:  # also an unknown driver (NoSuchModuleError)
        raise DatabaseProblem(
            f"DATABASE_URL is not a database URL Kave can use ({type(exc).__name__})"
        ) from None
    try:
        await check_database(engine, settings.database_url)
        async with build_session_factory(engine)() as session:
            return await work(session, settings)
    except DatabaseProblem:
        raise
    except Exception as exc:
        line = describe_database_error(exc, settings.database_url)
        if line is None:
            raise
        raise DatabaseProblem(line) from None
    finally:
        await engine.dispose()


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def run_with_session(work: Work[T], settings: Settings | None = None) -> T:
    """Run `work` with a session on the configured database; an `AppError` or a database
    problem exits with 1 after one line on stderr."""
    settings = settings or load_cli_settings()
    try:
        return asyncio.run(_run(settings, work))
    except DatabaseProblem as exc:
        raise _fail(str(exc)) from None
    except AppError as exc:
        raise _fail(exc.message) from None


def try_with_session(work: Work[T], settings: Settings | None = None) -> T | None:
    """`run_with_session` for hints: None, and nothing printed, when the database cannot serve."""
    settings = settings or load_cli_settings()
    try:
        return asyncio.run(_run(settings, work))
    except DatabaseProblem:
        return None


def run_with_store(work: StoreWork[T], settings: Settings | None = None) -> T:
    """`run_with_session` with the configured blob store open beside the session."""

    async def with_store(session: AsyncSession, settings: Settings) -> T:
        store = await build_blob_store(settings)
        try:
            return await work(session, store, settings)
        finally:
            await store.close()

    return run_with_session(with_store, settings)
