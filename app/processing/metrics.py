"""Prometheus figures of the event pipeline (served at /metrics).

One process-wide registry: several apps built in one process (tests) share these counters, so
compare deltas, never absolute values.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter, Histogram

from app.processing.models import EventKind
from app.processing.new_events import NewEvent

EVENTS_RECEIVED = Counter(
    "kave_events_received_total",
    "Events in batches the webhooks stored and acknowledged, by kind (re-deliveries included)",
    ["kind"],
)
EVENTS_STORED = Counter(
    "kave_events_stored_total", "Events stored by the webhooks for the first time"
)
EVENTS_DUPLICATE = Counter(
    "kave_events_duplicate_total", "Events received again and counted as duplicates"
)
EVENTS_PROCESSED = Counter(
    "kave_events_processed_total", "Events processed successfully, by kind", ["kind"]
)
EVENTS_FAILED = Counter(
    "kave_events_failed_total",
    "Events given up on (the dead letter: permanent error or attempts exhausted), by kind",
    ["kind"],
)
TASKS = Counter(
    "kave_event_tasks_total",
    "Processing attempts by outcome (processed, retry, failed, ignored, error, lease_lost)",
    ["kind", "outcome"],
)
TASK_SECONDS = Histogram(
    "kave_event_task_seconds",
    "Time spent processing one event",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

# Series exist from the start, so rate() and absent-alerts work before the first event.
for _kind in EventKind:
    EVENTS_RECEIVED.labels(kind=_kind.value)
    EVENTS_PROCESSED.labels(kind=_kind.value)
    EVENTS_FAILED.labels(kind=_kind.value)


def observe_stored(events: Sequence[NewEvent], *, stored: int, duplicates: int) -> None:
    for event in events:
        EVENTS_RECEIVED.labels(kind=event.kind).inc()
    EVENTS_STORED.inc(stored)
    EVENTS_DUPLICATE.inc(duplicates)


def observe_task(*, kind: str, outcome: str, seconds: float) -> None:
    TASKS.labels(kind=kind, outcome=outcome).inc()
    TASK_SECONDS.labels(kind=kind).observe(seconds)
    if outcome == "processed":
        EVENTS_PROCESSED.labels(kind=kind).inc()
    elif outcome == "failed":
        EVENTS_FAILED.labels(kind=kind).inc()
