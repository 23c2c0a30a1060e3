"""The event backlog, read from the database at scrape time.

The backlog gauges are computed per scrape in a registry of their own, from the scraped app's
database; the request counters live with the edge (`app/core/http_metrics.py`).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

import structlog
from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.base import utcnow
from app.processing.inbox import EventRepository

logger = structlog.get_logger("app.observability")


BACKLOG_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Backlog:
    unprocessed: float
    oldest_age_seconds: float
    up: bool


async def read_backlog(session_factory: async_sessionmaker[AsyncSession]) -> Backlog:
    """Events `received` or `processing`; NaN when the database does not answer in time."""
    try:
        async with asyncio.timeout(BACKLOG_TIMEOUT_SECONDS), session_factory() as session:
            count, oldest = await EventRepository(session).count_unprocessed()
    except Exception as exc:  # noqa: BLE001 (a scrape must not fail because the database does)
        logger.warning("metrics.backlog_unavailable", exc_type=type(exc).__name__)
        return Backlog(math.nan, math.nan, up=False)
    age = max(0.0, (utcnow() - oldest).total_seconds()) if oldest is not None else 0.0
    return Backlog(float(count), age, up=True)


def backlog_registry(backlog: Backlog) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    Gauge(
        "kave_events_unprocessed",
        "Events received or processing, read at scrape time (NaN: database unreachable)",
        registry=registry,
    ).set(backlog.unprocessed)
    Gauge(
        "kave_events_oldest_unprocessed_age_seconds",
        "Age of the oldest event still received or processing (0: none; NaN: unknown)",
        registry=registry,
    ).set(backlog.oldest_age_seconds)
    Gauge(
        "kave_events_backlog_up",
        "1 if the backlog figures above were read from the database at this scrape",
        registry=registry,
    ).set(1 if backlog.up else 0)
    return registry
