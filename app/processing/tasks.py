"""Logged background tasks: claim an event, run its handler, record the outcome.

A task never raises: a failing task would stop the ones after it. Failures are written to the
event row (`last_error`, `attempts`) and retried with exponential backoff and jitter; after
`MAX_ATTEMPTS` the event is `failed` and waits for an operator's replay.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import wraps

import structlog
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from app.core.errors import ServiceUnavailable, UnparseableMessage
from app.db.repositories.events import ClaimedEvent, EventRepository
from app.processing import metrics
from app.processing.context import ProcessingContext
from app.processing.outcomes import EventIgnored, LeaseLost, PermanentFailure

logger = structlog.get_logger("app.processing")

Handler = Callable[[ProcessingContext, ClaimedEvent], Awaitable[None]]
MAX_ERROR_CHARS = 2000


def retry_delay(attempts: int, *, base: float, cap: float) -> float:
    """Exponential backoff with equal jitter: half fixed, half random."""
    ceiling = min(cap, base * 2 ** max(0, attempts - 1))
    return float(ceiling) / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 (jitter, not crypto)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:MAX_ERROR_CHARS]


def is_outage(exc: BaseException) -> bool:
    """A backing service is down: not the event's fault, so it never exhausts the attempts."""
    return isinstance(exc, ServiceUnavailable | OperationalError | InterfaceError | OSError)


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


def logged_task(handler: Handler) -> Handler:
    @wraps(handler)
    async def run(ctx: ProcessingContext, event: ClaimedEvent) -> None:
        log = logger.bind(
            task=handler.__name__, event_id=str(event.id), kind=event.kind, attempt=event.attempts
        )
        log.info("event.task.started")
        started = time.perf_counter()
        outcome = "processed"
        error: Exception | None = None
        try:
            await handler(ctx, event)
        except asyncio.CancelledError:
            log.warning("event.task.cancelled")
            raise
        except LeaseLost as exc:
            outcome, error = "lease_lost", exc
        except EventIgnored as exc:
            outcome, error = "ignored", exc
        except (PermanentFailure, UnparseableMessage) as exc:
            outcome, error = "failed", exc
        except Exception as exc:  # noqa: BLE001 (every other failure is retried)
            outcome, error = "error", exc
        if error is not None and outcome != "lease_lost":
            try:
                outcome = await _record(ctx, event, outcome, error)
            except (SQLAlchemyError, OSError, TimeoutError) as record_exc:
                # The lease runs out and the recovery loop picks the event up again.
                log.warning("event.task.record_failed", exc_type=type(record_exc).__name__)
        duration = time.perf_counter() - started
        metrics.observe_task(kind=event.kind, outcome=outcome, seconds=duration)
        log.info(
            "event.task.finished",
            outcome=outcome,
            duration_ms=round(duration * 1000, 2),
            **({"error_type": type(error).__name__} if error else {}),
        )

    return run


async def process_event(
    ctx: ProcessingContext, event_id: uuid.UUID, handlers: dict[str, Handler]
) -> None:
    """Claim one event and run its handler. Does nothing if someone else has it."""
    try:
        async with ctx.session_factory() as session:
            event = await EventRepository(session).claim(
                event_id, owner=ctx.owner, lease_seconds=ctx.settings.event_lease_seconds
            )
            await session.commit()
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        logger.warning("event.claim_failed", event_id=str(event_id), exc_type=type(exc).__name__)
        return
    if event is None:
        return
    handler = handlers.get(event.kind)
    if handler is None:
        handler = _unknown_kind
    await handler(ctx, event)


@logged_task
async def _unknown_kind(ctx: ProcessingContext, event: ClaimedEvent) -> None:
    raise PermanentFailure(f"no handler for events of kind '{event.kind}'")
