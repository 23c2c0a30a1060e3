"""Logged background tasks: claim events, run their handlers, record every outcome.

Events are processed in small batches: one statement claims the batch, handlers prepare each
event's records side by side (parsing, storing attachments), one flush makes the blobs they
stored durable, and one transaction writes the records and marks the events processed. Every
event still gets its own log lines, metrics and outcome.

A task never raises: a failing task would stop the ones after it. Failures are written to the
event row (`last_error`, `attempts`) and retried with exponential backoff and jitter; after
`MAX_ATTEMPTS` the event is `failed` and waits for an operator's replay. A batch whose commit
fails on its data is committed again event by event, so one bad event cannot hold back the
others; a database outage fails the batch, and every event in it is retried.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from app.core.errors import ServiceUnavailable
from app.processing import metrics
from app.processing.context import ProcessingContext
from app.processing.inbox import ClaimedEvent, EventRepository
from app.processing.outcomes import (
    EventIgnored,
    LeaseLost,
    PermanentFailure,
    Records,
    TaskOutcome,
    commit_processed,
)

logger = structlog.get_logger("app.processing")

Handler = Callable[[ProcessingContext, ClaimedEvent], Awaitable[Records]]
MAX_ERROR_CHARS = 2000


def retry_delay(attempts: int, *, base: float, cap: float) -> float:
    """Exponential backoff with equal jitter: half fixed, half random."""
    ceiling = min(cap, base * 2 ** max(0, attempts - 1))
    return float(ceiling) / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 (jitter, not crypto)


def _describe(exc: BaseException) -> str:
    # A domain error a handler turned into an outcome is named as itself (its own type says more).
    if isinstance(exc, TaskOutcome) and exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc)
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:MAX_ERROR_CHARS]


def is_outage(exc: BaseException) -> bool:
    """A backing service is down: not the event's fault, so it never exhausts the attempts."""
    return isinstance(exc, ServiceUnavailable | OperationalError | InterfaceError | OSError)


def _outcome_of(exc: Exception) -> str:
    if isinstance(exc, LeaseLost):
        return "lease_lost"
    if isinstance(exc, EventIgnored):
        return "ignored"
    if isinstance(exc, PermanentFailure):
        return "failed"
    return "error"  # every other failure is retried


async def _record(ctx: ProcessingContext, event: ClaimedEvent, outcome: str, exc: Exception) -> str:
    """Write a non-success outcome; returns what was recorded."""
    error = _describe(exc)
    exhausted = event.attempts >= ctx.settings.max_attempts and not is_outage(exc)
    async with ctx.session_factory() as session:
        events = EventRepository(session)
        if outcome == "ignored":
            await events.mark_ignored(event.id, owner=ctx.owner, reason=error)
        elif outcome == "failed" or exhausted:
            outcome = "failed"
            await events.mark_failed(event.id, owner=ctx.owner, error=error)
        else:
            outcome = "retry"
            delay = retry_delay(
                event.attempts,
                base=ctx.settings.retry_base_seconds,
                cap=ctx.settings.retry_max_seconds,
            )
            await events.schedule_retry(event.id, owner=ctx.owner, error=error, delay_seconds=delay)
        await session.commit()
    return outcome


@dataclass(slots=True)
class _Task:
    """One event's run through its handler: what it produced, or how it failed."""

    event: ClaimedEvent
    handler: Handler
    log: Any
    started: float
    records: Records | None = None
    outcome: str = "processed"
    error: Exception | None = None

    def fail(self, exc: Exception) -> None:
        self.records, self.outcome, self.error = None, _outcome_of(exc), exc


def _task(event: ClaimedEvent, handler: Handler, started: float) -> _Task:
    log = logger.bind(
        task=handler.__name__, event_id=str(event.id), kind=event.kind, attempt=event.attempts
    )
    return _Task(event=event, handler=handler, log=log, started=started)


async def _prepare(ctx: ProcessingContext, task: _Task) -> None:
    task.log.debug("event.task.started")  # at INFO, `finished` alone says it all
    try:
        task.records = await task.handler(ctx, task.event)
    except asyncio.CancelledError:
        task.log.warning("event.task.cancelled")
        raise
    except Exception as exc:  # noqa: BLE001 (sorted by _outcome_of)
        task.fail(exc)


async def _commit(ctx: ProcessingContext, tasks: Sequence[_Task]) -> None:
    items = [(task.event, task.records) for task in tasks if task.records is not None]
    try:
        owned = await commit_processed(ctx, items)
    except Exception as exc:  # noqa: BLE001 (sorted below)
        if len(tasks) > 1 and not is_outage(exc):
            for task in tasks:
                await _commit(ctx, [task])
            return
        for task in tasks:
            task.fail(exc)
        return
    for task in tasks:
        if task.event.id not in owned:
            task.fail(LeaseLost(f"lease on event {task.event.id} was lost before commit"))


async def _finish(ctx: ProcessingContext, task: _Task) -> None:
    if task.error is not None and task.outcome != "lease_lost":
        try:
            task.outcome = await _record(ctx, task.event, task.outcome, task.error)
        except (SQLAlchemyError, OSError, TimeoutError) as record_exc:
            # The lease runs out and the recovery loop picks the event up again.
            task.log.warning("event.task.record_failed", exc_type=type(record_exc).__name__)
    duration = time.perf_counter() - task.started
    metrics.observe_task(kind=task.event.kind, outcome=task.outcome, seconds=duration)
    task.log.info(
        "event.task.finished",
        outcome=task.outcome,
        duration_ms=round(duration * 1000, 2),
        **({"error_type": type(task.error).__name__} if task.error else {}),
    )


async def _blobs_flushed(ctx: ProcessingContext, tasks: Sequence[_Task]) -> bool:
    """Handlers store blobs with `durable=False`: one flush makes the batch's blobs durable
    before the commit that records them (the local disk: one syncfs instead of two or three
    fsyncs per blob). If it fails, every task fails (and is retried): nothing is committed."""
    try:
        await ctx.blob_store.sync()
    except Exception as exc:  # noqa: BLE001 (StorageUnavailable, or worse: retried either way)
        for task in tasks:
            task.fail(exc)
        return False
    return True


async def process_events(
    ctx: ProcessingContext, event_ids: Sequence[uuid.UUID], handlers: Mapping[str, Handler]
) -> None:
    """Claim the events and run their handlers. Events someone else has are skipped."""
    try:
        async with ctx.session_factory() as session:
            events = await EventRepository(session).claim(
                event_ids, owner=ctx.owner, lease_seconds=ctx.settings.event_lease_seconds
            )
            await session.commit()
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        logger.warning("event.claim_failed", events=len(event_ids), exc_type=type(exc).__name__)
        return
    started = time.perf_counter()
    tasks = [_task(event, handlers.get(event.kind, _unknown_kind), started) for event in events]
    await asyncio.gather(*(_prepare(ctx, task) for task in tasks))
    prepared = [task for task in tasks if task.records is not None]
    if prepared and await _blobs_flushed(ctx, prepared):
        await _commit(ctx, prepared)
    for task in tasks:
        await _finish(ctx, task)


async def _unknown_kind(ctx: ProcessingContext, event: ClaimedEvent) -> Records:
    raise PermanentFailure(f"no handler for events of kind '{event.kind}'")
