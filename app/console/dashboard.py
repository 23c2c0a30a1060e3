"""The dashboard: where events stand, the backlog, mail per hour over the last day, failures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from fastapi import Request
from starlette.responses import Response

from app.console.deps import AnyViewer
from app.console.pages import render
from app.console.routing import console_router
from app.core.security import Scope
from app.db.base import utcnow
from app.deps import SessionDep
from app.emails.repository import EmailRepository
from app.processing.inbox import EventRepository
from app.processing.models import EventStatus

router = console_router()

HOURS = 24
RECENT_FAILURES = 8
# The chart's drawing area, in SVG user units (the SVG scales to its container).
CHART_WIDTH, CHART_HEIGHT, CHART_LEFT, CHART_BOTTOM = 720, 200, 40, 24


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    label: str  # the hour it starts, UTC


@dataclass(frozen=True, slots=True)
class HourlyChart:
    bars: list[Bar]
    peak: int
    total: int
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    left: int = CHART_LEFT
    bottom: int = CHART_BOTTOM


def hourly_chart(counts: list[int], *, first_hour_label: int) -> HourlyChart:
    """Bars for `counts` (one per hour, oldest first), scaled to the busiest hour."""
    peak = max(counts, default=0)
    plot_width = CHART_WIDTH - CHART_LEFT
    plot_height = CHART_HEIGHT - CHART_BOTTOM - 8
    slot = plot_width / max(len(counts), 1)
    bars = []
    for index, count in enumerate(counts):
        height = plot_height * count / peak if peak else 0.0
        bars.append(
            Bar(
                x=round(CHART_LEFT + index * slot + 1, 2),
                y=round(CHART_HEIGHT - CHART_BOTTOM - height, 2),
                width=round(slot - 2, 2),
                height=round(height, 2),
                count=count,
                label=f"{(first_hour_label + index) % 24:02d}:00",
            )
        )
    return HourlyChart(bars=bars, peak=peak, total=sum(counts))


@router.get("/")
async def dashboard(request: Request, viewer: AnyViewer, session: SessionDep) -> Response:
    context: dict[str, object] = {}
    if viewer.can(Scope.EVENTS_READ):
        events = EventRepository(session)
        by_status = {status.value: 0 for status in EventStatus}
        for status, _, count in await events.count_by_status_and_kind():
            by_status[status] = by_status.get(status, 0) + count
        unprocessed, oldest = await events.count_unprocessed()
        context |= {
            "by_status": by_status,
            "unprocessed": unprocessed,
            "oldest_age": max(0.0, (utcnow() - oldest).total_seconds()) if oldest else None,
            "failures": await events.page(
                status=EventStatus.FAILED.value,
                kind=None,
                received_after=None,
                after=None,
                limit=RECENT_FAILURES,
            ),
        }
    if viewer.can(Scope.EMAILS_READ):
        now = utcnow()
        # Whole hours: the last bar is the hour under way.
        since = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)
        counts = await EmailRepository(session).received_per_hour(since=since, hours=HOURS)
        context["chart"] = hourly_chart(counts, first_hour_label=since.hour)
    return render(request, "dashboard.html", context)
