"""`kave events list|show` and `kave replay`: the inbox of webhook events from a shell.

`replay` puts failed (or processed) events back to `received`; a running Kave's recovery loop
picks them up within RECOVERY_INTERVAL_SECONDS. Events of kind `invalid` (not an object, an
unknown event) can only fail again, so a replay leaves them out unless asked.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

import orjson
import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.cli.output import (
    TIME_HELP,
    JsonOption,
    LimitOption,
    clip,
    parse_id,
    parse_time,
    print_json,
    print_table,
    progress,
    when,
)
from app.cli.runtime import run_with_session
from app.core.config import Settings
from app.core.errors import AppError
from app.events.errors import EventNotFound
from app.events.replay import replayable_event, requeue_event
from app.events.schemas import EventDetail, EventOut, parse_payload
from app.processing.inbox import EventRepository
from app.processing.models import EventKind, EventStatus

events_app = typer.Typer(help="List and show webhook events.", no_args_is_help=True)

# Requeued per statement (and per progress-bar step).
REPLAY_CHUNK = 100
ONLY_FAIL_AGAIN = (EventKind.INVALID.value,)


@events_app.command("list")
def list_(
    status: Annotated[
        EventStatus | None, typer.Option("--status", help="Only events in this status.")
    ] = None,
    kind: Annotated[
        EventKind | None, typer.Option("--kind", help="Only events of this kind.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help=f"Received at or after: {TIME_HELP}.")
    ] = None,
    limit: LimitOption = 20,
    as_json: JsonOption = False,
) -> None:
    """Events, newest first: id, received time, kind, type, status, attempts, last error."""
    received_after = parse_time(since)

    async def work(session: AsyncSession, _: Settings) -> list[EventOut]:
        rows = await EventRepository(session).page(
            status=status.value if status else None,
            kind=kind.value if kind else None,
            received_after=received_after,
            after=None,
            limit=limit,
        )
        return [EventOut.of(event) for event in rows]

    items = run_with_session(work)
    if as_json:
        print_json(items)
        return
    if not items:
        typer.echo("No events match.")
        return
    print_table(
        ["id", "received (UTC)", "kind", "type", "status", "tries", "last error"],
        [
            [
                str(e.id),
                when(e.received_at),
                e.kind.value,
                clip(e.event_type, 24),
                e.status.value,
                str(e.attempts),
                clip(e.last_error, 50),
            ]
            for e in items
        ],
    )


@events_app.command("show")
def show(
    event_id: Annotated[str, typer.Argument(metavar="ID", help="The event's id.")],
    payload: Annotated[
        bool, typer.Option("--payload", help="Also print the event as received (JSON).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """One event: status, attempts, last error and timestamps."""
    id_ = parse_id(event_id)

    async def work(session: AsyncSession, _: Settings) -> EventDetail:
        events = EventRepository(session)
        event = await events.get_without_payload(id_)
        if event is None:
            raise EventNotFound(f"No event with id {id_}.")
        body = parse_payload(await events.get_payload(id_)) if payload else None
        return EventDetail.with_payload(event, body)

    detail = run_with_session(work)
    if as_json:
        print_json(detail)
        return
    shown = detail.model_dump(exclude={"payload"})
    width = max(map(len, shown))
    for name, value in shown.items():
        text = when(value) if hasattr(value, "strftime") else value
        typer.echo(f"{name:{width}}  {'-' if text is None else text}")
    if payload:
        typer.echo("payload:")
        if detail.payload is None:
            typer.echo("  (purged)")
        else:
            typer.echo(orjson.dumps(detail.payload, option=orjson.OPT_INDENT_2).decode())


class ReplayableStatus(StrEnum):
    FAILED = EventStatus.FAILED.value
    PROCESSED = EventStatus.PROCESSED.value


@dataclass
class ReplayReport:
    requeued: int = 0
    purged: int = 0
    invalid_skipped: int = 0
    refused: list[str] = field(default_factory=list)


def replay(
    ids: Annotated[
        list[str] | None,
        typer.Option("--id", metavar="ID", help="Replay this event; repeat for several."),
    ] = None,
    status: Annotated[
        ReplayableStatus, typer.Option("--status", help="Which events to replay (without --id).")
    ] = ReplayableStatus.FAILED,
    kind: Annotated[
        EventKind | None, typer.Option("--kind", help="Only events of this kind.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help=f"Only events received since: {TIME_HELP}.")
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="At most this many, oldest first.  [default: all]"),
    ] = None,
    include_invalid: Annotated[
        bool,
        typer.Option("--include-invalid", help="Also replay events of kind `invalid`."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be replayed; change nothing.")
    ] = False,
) -> None:
    """Put matching events back to `received`; the server's recovery loop processes them."""
    chosen = [parse_id(value) for value in ids or []]
    received_after = parse_time(since)
    skip = () if include_invalid or kind is EventKind.INVALID else ONLY_FAIL_AGAIN

    async def by_id(session: AsyncSession, settings: Settings) -> tuple[ReplayReport, float]:
        report = ReplayReport()
        for event_id in chosen:
            try:
                event = await replayable_event(session, event_id)
                if event.kind in skip:
                    report.invalid_skipped += 1
                    continue
                if not dry_run:
                    await requeue_event(session, event_id)
                report.requeued += 1
            except AppError as exc:
                await session.rollback()
                report.refused.append(f"{event_id}: {exc.message}")
        return report, settings.recovery_interval_seconds

    async def matching(session: AsyncSession, settings: Settings) -> tuple[ReplayReport, float]:
        events = EventRepository(session)
        where: dict[str, Any] = {
            "status": status.value,
            "kind": kind.value if kind else None,
            "since": received_after,
        }
        found = await events.replayable_ids(**where, skip_kinds=skip, limit=limit)
        report = ReplayReport(
            purged=await events.count_purged(**where, skip_kinds=skip),
            invalid_skipped=await events.count_matching(**where, kinds=skip),
        )
        if dry_run:
            report.requeued = len(found)
            return report, settings.recovery_interval_seconds
        with progress(len(found), "Requeueing") as bar:
            for start in range(0, len(found), REPLAY_CHUNK):
                chunk = found[start : start + REPLAY_CHUNK]
                report.requeued += await events.requeue_many(chunk, status=status.value)
                await session.commit()
                bar.update(len(chunk))
        return report, settings.recovery_interval_seconds

    report, interval = run_with_session(by_id if chosen else matching)
    _print_replay(report, interval, chosen, status, kind, dry_run)
    if report.refused:
        raise typer.Exit(1)


def _print_replay(
    report: ReplayReport,
    interval: float,
    chosen: list[uuid.UUID],
    status: ReplayableStatus,
    kind: EventKind | None,
    dry_run: bool,
) -> None:
    what = "event(s)" if chosen else f"{status.value} {kind.value + ' ' if kind else ''}event(s)"
    if dry_run:
        typer.echo(f"Would requeue {report.requeued} {what}. Nothing was changed.")
    else:
        typer.echo(f"Requeued {report.requeued} {what}.")
        if report.requeued:
            typer.echo(
                f"A running Kave picks them up within RECOVERY_INTERVAL_SECONDS ({interval:g} s)."
            )
    if report.purged:
        typer.echo(f"Skipped {report.purged} whose payload was purged; they cannot be replayed.")
    if report.invalid_skipped:
        typer.echo(
            f"Skipped {report.invalid_skipped} of kind invalid: they can only fail again "
            "(--include-invalid replays them)."
        )
    for line in report.refused:
        typer.echo(f"error: {line}", err=True)
