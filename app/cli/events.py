"""`replay`: put failed (or processed) events back in the queue of a running Kave."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.cli.runtime import run_with_session
from app.core.config import Settings
from app.processing.inbox import EventRepository
from app.processing.models import EventKind, EventStatus


class ReplayableStatus(StrEnum):
    FAILED = EventStatus.FAILED.value
    PROCESSED = EventStatus.PROCESSED.value


def replay(
    status: Annotated[ReplayableStatus, typer.Option("--status", help="Which events to replay.")],
    kind: Annotated[
        EventKind | None, typer.Option("--kind", help="Only events of this kind.")
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="At most this many, oldest first.  [default: all]"),
    ] = None,
) -> None:
    """Put matching events back to `received`; the server's recovery loop processes them."""

    async def work(session: AsyncSession, settings: Settings) -> tuple[int, int, float]:
        events = EventRepository(session)
        kind_value = kind.value if kind else None
        requeued = await events.requeue_matching(status=status.value, kind=kind_value, limit=limit)
        purged = await events.count_purged(status=status.value, kind=kind_value)
        await session.commit()
        return requeued, purged, settings.recovery_interval_seconds

    requeued, purged, interval = run_with_session(work)
    what = f"{status.value} {kind.value + ' ' if kind else ''}event(s)"
    typer.echo(f"Requeued {requeued} {what}.")
    if requeued:
        typer.echo(
            f"A running Kave picks them up within RECOVERY_INTERVAL_SECONDS ({interval:g} s)."
        )
    if purged:
        typer.echo(f"Skipped {purged} whose payload was purged; they cannot be replayed.")
