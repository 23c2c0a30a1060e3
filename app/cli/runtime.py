"""How a CLI command reaches the database: settings, an engine, one session, then cleanup."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings, load_settings
from app.core.errors import AppError
from app.core.logging import configure_logging
from app.db.session import build_engine, build_session_factory

T = TypeVar("T")

Work = Callable[[AsyncSession, Settings], Awaitable[T]]


def load_cli_settings() -> Settings:
    settings = load_settings()
    # Commands report on stdout themselves; only warnings and errors go to the log (stderr).
    configure_logging(settings.model_copy(update={"log_level": "WARNING"}))
    return settings


async def _run(settings: Settings, work: Work[T]) -> T:
    engine = build_engine(settings)
    try:
        async with build_session_factory(engine)() as session:
            return await work(session, settings)
    finally:
        await engine.dispose()


def run_with_session(work: Work[T], settings: Settings | None = None) -> T:
    """Run `work` with a session on the configured database; an `AppError` exits with 1."""
    settings = settings or load_cli_settings()
    try:
        return asyncio.run(_run(settings, work))
    except AppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
