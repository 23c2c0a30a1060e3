"""HTTP figures, and the event backlog read from the database at scrape time.

Counters live in prometheus-client's default registry (one per process); the backlog gauges
are computed per scrape in a registry of their own, from the scraped app's database.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.base import utcnow
from app.db.repositories.events import EventRepository

logger = structlog.get_logger("app.observability")

BACKLOG_TIMEOUT_SECONDS = 2.0

HTTP_REQUESTS = Counter(
    "kave_http_requests_total",
    "HTTP requests by method, route template and status",
    ["method", "route", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "kave_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


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
