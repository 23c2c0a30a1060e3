"""Prometheus figures of the event pipeline (served at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS_RECEIVED = Counter(
    "kave_events_received_total", "Events stored by the webhooks (new, not duplicates)", ["kind"]
)
EVENTS_DUPLICATE = Counter(
    "kave_events_duplicate_total", "Events received again and counted as duplicates"
)
TASKS = Counter("kave_event_tasks_total", "Processing attempts by outcome", ["kind", "outcome"])
TASK_SECONDS = Histogram(
    "kave_event_task_seconds",
    "Time spent processing one event",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


def observe_task(*, kind: str, outcome: str, seconds: float) -> None:
    TASKS.labels(kind=kind, outcome=outcome).inc()
    TASK_SECONDS.labels(kind=kind).observe(seconds)
