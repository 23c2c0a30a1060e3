"""Helpers of the security tests: event states, settling, and the outcomes a bug would leave."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import FastAPI
from sqlalchemy import func, select

from app.processing.models import EventStatus, WebhookEvent
from app.tests.support import wait_until

T = TypeVar("T")

SETTLED = frozenset({EventStatus.PROCESSED, EventStatus.FAILED, EventStatus.IGNORED})
# What a failed or ignored event may say: the event itself is wrong. Anything else (a driver
# error, a TypeError, a JSONDecodeError) is a bug that only retrying hid.
EXPECTED_ERRORS = ("PermanentFailure:", "UnparseableMessage:", "EventIgnored:")


async def statuses(app: FastAPI) -> dict[str, int]:
    async with app.state.services.session_factory() as s:
        rows = await s.execute(
            select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)
        )
        return {status: n for status, n in rows.all()}


async def wait_settled(app: FastAPI, expected: int, *, timeout: float = 60.0) -> dict[str, int]:
    """Wait until `expected` events are processed, failed or ignored; the count by status."""

    async def settled() -> bool:
        seen = await statuses(app)
        return sum(seen.get(s, 0) for s in SETTLED) >= expected

    try:
        await wait_until(settled, timeout=timeout)
    except AssertionError as exc:
        raise AssertionError(f"events did not settle: {await statuses(app)}") from exc
    return await statuses(app)


async def unexpected_outcomes(app: FastAPI) -> list[tuple[str, str, int, str | None]]:
    """Events that needed a retry or ended with an error that is not the event's own fault."""
    async with app.state.services.session_factory() as s:
        rows = await s.execute(
            select(
                WebhookEvent.kind,
                WebhookEvent.status,
                WebhookEvent.attempts,
                WebhookEvent.last_error,
            )
        )
        found = []
        for kind, status, attempts, error in rows.all():
            if attempts > 1 or (error is not None and not error.startswith(EXPECTED_ERRORS)):
                found.append((kind, status, attempts, (error or "")[:200]))
        return found


def run_property(
    loop: asyncio.AbstractEventLoop, check: Callable[..., Coroutine[Any, Any, T]]
) -> Callable[..., T]:
    """A synchronous body for `@given` that runs `check` on the test's loop.

    Hypothesis drives a synchronous function in a worker thread (see `run_in_thread`); each
    example is handed to the test's event loop, which stays free to serve the requests.
    """

    def body(*args: Any, **kwargs: Any) -> T:
        return asyncio.run_coroutine_threadsafe(check(*args, **kwargs), loop).result(timeout=120)

    return body


async def run_in_thread(test: Callable[[], None]) -> None:
    await asyncio.to_thread(test)
